// The guide's ramp-up test: 10 -> 500 users over 10 minutes. Statistics per stage (tag `stage`).
//   k6 run ramp-up.js --stage 10s:10 --stage 600s:500
import { check } from 'k6';
import * as api from './lib/tripo.js';

export const options = api.buildOptions({ stages: [{ duration: '10s', target: 10 }, { duration: '600s', target: 500 }] });

export default function () {
  api.tagIteration();
  const created = api.createOrder();
  check(created, { 'order created': (r) => r.status === 201 });
  if (created.status === 201) check(api.getOrder(created.json('id')), { 'order read': (r) => r.status === 200 });
  api.thinkTime(1);
}
