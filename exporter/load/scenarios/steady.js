// The guide's steady-state test: 500 users for 30 minutes, the order lifecycle in a loop.
//   k6 run steady.js --vus 500 --duration 1800s
import { check } from 'k6';
import * as api from './lib/tripo.js';

export const options = api.buildOptions({ vus: 500, duration: '1800s' });

export default function () {
  api.tagIteration();
  const created = api.createOrder();
  check(created, { 'order created': (r) => r.status === 201 });
  if (created.status === 201) check(api.getOrder(created.json('id')), { 'order read': (r) => r.status === 200 });
  check(api.updateLocation(), { 'location accepted': (r) => r.status === 202 });
  api.thinkTime(1);
}
