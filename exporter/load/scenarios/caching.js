// The guide's cache effectiveness test: read-heavy order reads from a small hot set, so after the first read
// of each order the cache should answer. `cache_hits` is the share of reads the demo answered from its cache
// (its `x-cache: hit` header).
//   k6 run caching.js --vus 10 --duration 60s
import { check } from 'k6';
import { Rate } from 'k6/metrics';
import * as api from './lib/tripo.js';

export const options = api.buildOptions({ vus: 10, duration: '60s' });
const cacheHits = new Rate('cache_hits');
const HOT_ORDERS = parseInt(__ENV.HOT_ORDERS || '100', 10);

export default function () {
  api.tagIteration();
  for (let i = 0; i < 5; i += 1) {
    const read = api.getOrder(1 + Math.floor(Math.random() * HOT_ORDERS));
    check(read, { 'order read': (r) => r.status === 200 });
    cacheHits.add(read.headers['X-Cache'] === 'hit');
  }
  api.thinkTime(0.5);
}
