// The guide's trip execution load: many active trips sending location updates (onto the Redis queue the
// exporter's Redis collector watches) and trip status changes.
//   k6 run trip-execution.js --vus 500 --duration 600s
import { check } from 'k6';
import * as api from './lib/tripo.js';

export const options = api.buildOptions({ vus: 500, duration: '600s' });

export default function () {
  api.tagIteration();
  for (let i = 0; i < 4; i += 1) {
    check(api.updateLocation('location_update'), { 'location accepted': (r) => r.status === 202 });
  }
  check(api.updateTrip('trip_update'), { 'trip updated': (r) => r.status === 200 });
  api.thinkTime(1);
}
