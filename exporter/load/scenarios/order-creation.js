// The guide's order creation load: many users creating orders at once. Orders/s, creation latency
// P50/P95/P99 and error rate come from the `create_order` endpoint's statistics.
//   k6 run order-creation.js --vus 500 --duration 600s
import { check } from 'k6';
import * as api from './lib/tripo.js';

export const options = api.buildOptions({ vus: 500, duration: '600s' });

export default function () {
  api.tagIteration();
  check(api.createOrder('order_creation'), { 'order created': (r) => r.status === 201 });
  api.thinkTime(1);
}
