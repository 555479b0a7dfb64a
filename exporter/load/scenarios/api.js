// The guide's API benchmark: every endpoint of the Tripo04OS gateway, as examples/tripo04os.yaml probes them.
//   k6 run api.js --vus 10 --duration 60s      (TEST_BASE_URL=http://localhost:8020)
import { check } from 'k6';
import * as api from './lib/tripo.js';

export const options = api.buildOptions({ vus: 10, duration: '60s' });

export default function () {
  api.tagIteration();
  check(api.health(), { 'health 200': (r) => r.status === 200 });
  const created = api.createOrder();
  check(created, { 'order created': (r) => r.status === 201 });
  const id = created.status === 201 ? created.json('id') : 1;
  check(api.getOrder(id), { 'order read': (r) => r.status === 200 });
  check(api.updateTrip(), { 'trip updated': (r) => r.status === 200 });
  check(api.updateLocation(), { 'location accepted': (r) => r.status === 202 });
  check(api.sendNotification(), { 'notification queued': (r) => r.status === 202 });
  api.thinkTime(1);
}
