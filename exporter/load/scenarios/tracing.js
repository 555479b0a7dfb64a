// The guide's distributed tracing benchmark: order creation and reads carrying a fresh W3C traceparent; each
// trace is then looked up in Jaeger (JAEGER_HOST, default TEST_BASE_URL: the demo serves the Jaeger query
// API). `trace_found` is the share of traces Jaeger returned, `trace_duration` their end-to-end duration.
// The lookups are tagged phase=lookup, so they are not in the API's statistics.
//   k6 run tracing.js --vus 5 --duration 60s
import http from 'k6/http';
import { check, sleep } from 'k6';
import { Rate, Trend } from 'k6/metrics';
import * as api from './lib/tripo.js';

export const options = api.buildOptions({ vus: 5, duration: '60s' });
const JAEGER = (__ENV.JAEGER_HOST || api.BASE_URL).replace(/\/+$/, '');
const found = new Rate('trace_found');
const duration = new Trend('trace_duration', true);

function lookUp(traceId) {
  const res = http.get(`${JAEGER}/api/traces/${traceId}`,
    { tags: { endpoint: 'jaeger_get_trace', phase: 'lookup', name: '/api/traces/{id}' } });
  const spans = res.status === 200 ? (res.json('data.0.spans') || []) : [];
  found.add(spans.length > 0);
  if (spans.length > 0) {
    const start = Math.min(...spans.map((s) => s.startTime));
    const end = Math.max(...spans.map((s) => s.startTime + s.duration));
    duration.add((end - start) / 1000); // microseconds to milliseconds
  }
}

export default function () {
  api.tagIteration();
  const parent = api.traceparent();
  const created = api.createOrder(undefined, { traceparent: parent });
  check(created, { 'order created': (r) => r.status === 201 });
  if (created.status === 201) api.getOrder(created.json('id'), undefined, { traceparent: api.traceparent() });
  sleep(0.2); // the trace reaches the query API after its spans are flushed
  lookUp(parent.split('-')[1]);
  api.thinkTime(1);
}
