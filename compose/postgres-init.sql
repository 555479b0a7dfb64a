-- Run once by the postgres image when its data directory is new: the statistics the exporter's postgres
-- collector reads (the library itself is preloaded by the service's command in docker-compose.yml).
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
GRANT pg_monitor TO test_user;
