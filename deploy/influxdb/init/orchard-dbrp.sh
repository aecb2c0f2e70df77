#!/bin/bash
# InfluxDB 2.7's first start (DOCKER_INFLUXDB_INIT_MODE=setup) runs this after it created the org, the bucket and
# the admin token from .env. The orchard speaks InfluxDB's v1 API (/write, /query): map the bucket to database
# "orchard", retention policy "autogen", explicitly (2.4+ would also map a bucket of the same name virtually).
set -euo pipefail
bucket_id=$(influx bucket list --org "$DOCKER_INFLUXDB_INIT_ORG" --name "$DOCKER_INFLUXDB_INIT_BUCKET" \
  --token "$DOCKER_INFLUXDB_INIT_ADMIN_TOKEN" --hide-headers | cut -f1)
if ! influx v1 dbrp list --org "$DOCKER_INFLUXDB_INIT_ORG" --token "$DOCKER_INFLUXDB_INIT_ADMIN_TOKEN" \
    --db "$DOCKER_INFLUXDB_INIT_BUCKET" --hide-headers | grep -q .; then
  influx v1 dbrp create --org "$DOCKER_INFLUXDB_INIT_ORG" --token "$DOCKER_INFLUXDB_INIT_ADMIN_TOKEN" \
    --db "$DOCKER_INFLUXDB_INIT_BUCKET" --rp autogen --bucket-id "$bucket_id" --default
fi
echo "orchard: bucket $DOCKER_INFLUXDB_INIT_BUCKET ($bucket_id) served as database $DOCKER_INFLUXDB_INIT_BUCKET/autogen"
