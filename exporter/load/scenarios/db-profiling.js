// The guide's database profiling benchmark: order creation (INSERT plus the rider's unindexed active-order
// count) and reads of orders the cache does not hold yet, so they reach the database.
//   k6 run db-profiling.js --vus 10 --duration 60s
import { check } from 'k6';
import * as api from './lib/tripo.js';

export const options = api.buildOptions({ vus: 10, duration: '60s' });

export default function () {
  api.tagIteration();
  check(api.createOrder(), { 'order created': (r) => r.status === 201 });
  // Seeded orders 1..2000 exist in every demo; a random one is usually not cached yet.
  const read = api.getOrder(1 + Math.floor(Math.random() * 2000));
  check(read, { 'order read': (r) => r.status === 200 });
  api.thinkTime(0.5);
}
