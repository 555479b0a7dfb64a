// The guide's trip execution load: many active trips sending location updates (onto the Redis queue the
// exporter's Redis collector watches, drained by the demo's workers) and trip status changes, while new orders
// go through the matching service; `matching_duration` is the matching step's own latency (the order answer's
// `matching_ms`).
//   k6 run trip-execution.js --vus 500 --duration 600s
import { check } from 'k6';
import { Trend } from 'k6/metrics';
import * as api from './lib/tripo.js';

export const options = api.buildOptions({ vus: 500, duration: '600s' });
const matching = new Trend('matching_duration', true);

export default function () {
  api.tagIteration();
  for (let i = 0; i < 4; i += 1) {
    check(api.updateLocation('location_update'), { 'location accepted': (r) => r.status === 202 });
  }
  check(api.updateTrip('trip_update'), { 'trip updated': (r) => r.status === 200 });
  const order = api.createOrder('order_creation');
  if (check(order, { 'order created': (r) => r.status === 201 })) matching.add(order.json('matching_ms'));
  api.thinkTime(1);
}
