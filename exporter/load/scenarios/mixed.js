// The guide's mixed workload: 40 % order creation, 30 % trip updates, 20 % location updates, 10 %
// notifications. Each iteration is one request; the part is chosen from the iteration's number in the whole
// test, so the shares are exact over every 10 iterations (random choice would drift by a point or more over
// a few thousand requests). Each part is tagged `part`, for statistics per part.
//   k6 run mixed.js --vus 500 --duration 600s
import { check } from 'k6';
import exec from 'k6/execution';
import * as api from './lib/tripo.js';

export const options = api.buildOptions({ vus: 500, duration: '600s' });

// Ten slots: 4 order creation, 3 trip updates, 2 location updates, 1 notification.
const SLOTS = ['order_creation', 'trip_update', 'location_update', 'order_creation', 'trip_update',
  'order_creation', 'location_update', 'trip_update', 'order_creation', 'notification'];

export default function () {
  api.tagIteration();
  const part = SLOTS[exec.scenario.iterationInTest % SLOTS.length];
  if (part === 'order_creation') check(api.createOrder(part), { 'order created': (r) => r.status === 201 });
  else if (part === 'trip_update') check(api.updateTrip(part), { 'trip updated': (r) => r.status === 200 });
  else if (part === 'location_update') check(api.updateLocation(part), { 'location accepted': (r) => r.status === 202 });
  else check(api.sendNotification(part), { 'notification queued': (r) => r.status === 202 });
  api.thinkTime(0.1);
}
