// The guide's stress test ("push beyond expected load to find limits"): the arrival rate ramps up in STEPS
// equal stages from START_RATE by STEP_RATE per stage, each STEP_DURATION long. perf-exporter watches each
// stage as it ends and stops the run at the first one where a target broke; the capacity is the highest
// stage rate at which every target still held. Under plain `k6 run`, the thresholds abort it instead.
//   START_RATE=10 STEP_RATE=10 STEPS=20 STEP_DURATION=30s k6 run breakpoint.js
import { check } from 'k6';
import * as api from './lib/tripo.js';

const start = parseInt(__ENV.START_RATE || '10', 10);
const step = parseInt(__ENV.STEP_RATE || '10', 10);
const steps = parseInt(__ENV.STEPS || '20', 10);
const stepDuration = __ENV.STEP_DURATION || '30s';
const vus = parseInt(__ENV.VUS || '200', 10);

const stages = [];
if (api.WARMUP > 0) stages.push({ duration: `${api.WARMUP}s`, target: start });
for (let i = 0; i < steps; i += 1) stages.push({ duration: stepDuration, target: start + step * i });

export const options = api.buildOptions();
delete options.scenarios;
options.scenarios = {
  breakpoint: {
    executor: 'ramping-arrival-rate', startRate: start, timeUnit: '1s', preAllocatedVUs: Math.min(vus, 20),
    maxVUs: vus, stages,
  },
};
if (!__ENV.THRESHOLDS) {
  for (const [name, rules] of Object.entries(options.thresholds)) {
    options.thresholds[name] = rules.map((r) => ({ threshold: r, abortOnFail: true, delayAbortEval: stepDuration }));
  }
}

export default function () {
  api.tagIteration();
  check(api.createOrder('order_creation'), { 'order created': (r) => r.status === 201 });
}
