// The guide's spike test: 100 -> 1000 -> 100 users; does the platform recover after the spike?
//   k6 run spike.js --stage 30s:100 --stage 60s:1000 --stage 90s:100
import { check } from 'k6';
import * as api from './lib/tripo.js';

export const options = api.buildOptions({
  stages: [{ duration: '30s', target: 100 }, { duration: '60s', target: 1000 }, { duration: '90s', target: 100 }],
});

export default function () {
  api.tagIteration();
  const created = api.createOrder();
  check(created, { 'order created': (r) => r.status === 201 });
  if (created.status === 201) check(api.getOrder(created.json('id')), { 'order read': (r) => r.status === 200 });
  api.thinkTime(1);
}
