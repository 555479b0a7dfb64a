// The open model: orders arrive at a fixed rate whatever the latency, as real riders do (RATE per second,
// VUS pre-allocated, DURATION). When the VUs cannot keep up, k6 counts `dropped_iterations`: the rate asked
// for was not generated, so the run says nothing about that rate.
//   RATE=200 VUS=100 DURATION=60s k6 run arrival-rate.js
import { check } from 'k6';
import * as api from './lib/tripo.js';

if (!__ENV.RATE) __ENV.RATE = '50';
export const options = api.buildOptions();

export default function () {
  api.tagIteration();
  check(api.createOrder('order_creation'), { 'order created': (r) => r.status === 201 });
}
