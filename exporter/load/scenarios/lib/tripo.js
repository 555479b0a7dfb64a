// Shared by every Tripo04OS scenario: options from the environment, stage/phase tags, and the API calls.
// No remote imports: everything here is k6's own modules, so scripts run on a machine without internet.
//
// Environment (all optional; `k6 run <script> --vus N --duration D` or `--stage D:N` work as usual):
//   TEST_BASE_URL   the API gateway (default http://localhost:8020)
//   WARMUP          warm-up at the start of the run, tagged phase=warmup (default 0s). With --stage, the first
//                   stage is the warm-up.
//   THINK_TIME      pause between iterations (default per script; 0 for none)
//   RATE            run the open model instead: this many iterations per second (constant-arrival-rate),
//                   with VUS pre-allocated VUs (default 50) for DURATION (default 60s); dropped_iterations
//                   counts what the VUs could not start
//   THRESHOLDS      the thresholds as JSON (perf-exporter builds them from `targets:`); default: the guide's
import http from 'k6/http';
import exec from 'k6/execution';
import { sleep } from 'k6';

export const BASE_URL = (__ENV.TEST_BASE_URL || 'http://localhost:8020').replace(/\/+$/, '');

// The guide's targets: API P95 < 500 ms, P99 < 1000 ms, error rate < 1 %.
const GUIDE_THRESHOLDS = {
  'http_req_duration{phase:measure}': ['p(95)<500', 'p(99)<1000'],
  'http_req_failed{phase:measure}': ['rate<0.01'],
};

export function seconds(text) {
  // k6 durations: "90s", "1m30s", "500ms", "2h" or a number of seconds.
  if (text === undefined || text === null || text === '') return 0;
  if (typeof text === 'number') return text;
  if (/^\d+(\.\d+)?$/.test(text)) return parseFloat(text);
  const units = { ms: 0.001, s: 1, m: 60, h: 3600 };
  let total = 0;
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;
  let match;
  while ((match = re.exec(text)) !== null) total += parseFloat(match[1]) * units[match[2]];
  return total;
}

export const WARMUP = seconds(__ENV.WARMUP || '0s');

export function thinkTime(defaultSeconds) {
  const value = __ENV.THINK_TIME === undefined ? defaultSeconds : seconds(__ENV.THINK_TIME);
  if (value > 0) sleep(value);
}

// Options for a script: `shape` is its own default (used when neither RATE nor the command line sets one).
export function buildOptions(shape) {
  const options = {
    summaryTrendStats: ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)', 'p(99)', 'count'],
    thresholds: __ENV.THRESHOLDS ? JSON.parse(__ENV.THRESHOLDS) : GUIDE_THRESHOLDS,
    discardResponseBodies: false,
  };
  if (__ENV.RATE) {
    const vus = parseInt(__ENV.VUS || '50', 10);
    options.scenarios = {
      open_model: {
        executor: 'constant-arrival-rate', rate: parseInt(__ENV.RATE, 10), timeUnit: '1s',
        duration: `${seconds(__ENV.DURATION || '60s') + WARMUP}s`, preAllocatedVUs: vus, maxVUs: vus,
      },
    };
  } else if (shape) {
    Object.assign(options, shape);
  }
  return options;
}

// Each scenario's stage end times (seconds from its start), computed once per VU: exec.test.options is
// rebuilt on every access, too slow for every iteration.
const stageEnds = {};

function endsOf(name) {
  if (!stageEnds[name]) {
    const scenario = (exec.test.options.scenarios || {})[name] || {};
    let stages = scenario.stages || [];
    if (WARMUP > 0 && stages.length > 1) stages = stages.slice(1);
    let end = WARMUP;
    stageEnds[name] = stages.map((stage) => { end += seconds(stage.duration); return end; });
  }
  return stageEnds[name];
}

// The stage an iteration starts in, counted from 1 after the warm-up, from the scenario's own schedule.
function stageOf(elapsed) {
  if (elapsed < WARMUP) return 'warmup';
  const ends = endsOf(exec.scenario.name);
  for (let i = 0; i < ends.length; i += 1) {
    if (elapsed < ends[i]) return String(i + 1);
  }
  return String(Math.max(ends.length, 1));
}

// Call first in every iteration: tags what follows with phase (warmup|measure) and stage.
let lastStage = null;

export function tagIteration() {
  const elapsed = (Date.now() - exec.scenario.startTime) / 1000;
  const stage = stageOf(elapsed);
  if (stage !== lastStage) { // the tags stay on the VU until changed
    exec.vu.metrics.tags.stage = stage;
    exec.vu.metrics.tags.phase = stage === 'warmup' ? 'warmup' : 'measure';
    lastStage = stage;
  }
}

// -- the API -------------------------------------------------------------------------------------------------

const JSON_HEADERS = { 'Content-Type': 'application/json' };
const BERLIN = { lat: 52.52, lon: 13.405 };

function params(endpoint, part, extraHeaders) {
  const tags = { endpoint };
  if (part) tags.part = part;
  return { headers: Object.assign({}, JSON_HEADERS, extraHeaders || {}), tags };
}

function randomInt(low, high) {
  return low + Math.floor(Math.random() * (high - low + 1));
}

export function point() {
  return { lat: +(BERLIN.lat + (Math.random() - 0.5) * 0.2).toFixed(5),
           lon: +(BERLIN.lon + (Math.random() - 0.5) * 0.3).toFixed(5) };
}

export function createOrder(part, extraHeaders) {
  const body = { rider_id: randomInt(1, 5000), pickup: point(), dropoff: point() };
  return http.post(`${BASE_URL}/api/v1/orders`, JSON.stringify(body), params('create_order', part, extraHeaders));
}

export function getOrder(id, part, extraHeaders) {
  return http.get(`${BASE_URL}/api/v1/orders/${id}`, params('get_order', part, extraHeaders));
}

export function updateTrip(part) {
  const statuses = ['accepted', 'en_route', 'arrived', 'in_progress', 'completed'];
  const body = { status: statuses[randomInt(0, statuses.length - 1)] };
  return http.patch(`${BASE_URL}/api/v1/trips/${randomInt(1, 2000)}`, JSON.stringify(body),
    params('update_trip_status', part));
}

export function updateLocation(part) {
  const body = Object.assign({ driver_id: randomInt(1, 800) }, point());
  return http.post(`${BASE_URL}/api/v1/trips/${randomInt(1, 2000)}/location`, JSON.stringify(body),
    params('update_location', part));
}

export function sendNotification(part) {
  const body = { user_id: randomInt(1, 5000), channel: 'push', message: 'Your driver is arriving' };
  return http.post(`${BASE_URL}/api/v1/notifications`, JSON.stringify(body), params('send_notification', part));
}

export function health() {
  return http.get(`${BASE_URL}/health`, params('health'));
}

// A fresh W3C traceparent: 32 and 16 hex digits, sampled.
export function traceparent() {
  const hex = (n) => Array.from({ length: n }, () => Math.floor(Math.random() * 16).toString(16)).join('');
  return `00-${hex(32)}-${hex(16)}-01`;
}
