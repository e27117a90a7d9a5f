#!/usr/bin/env bash
# One database and one owner per service (ingest, outreach, notify), made the first time
# the PostgreSQL volume is initialised. Passwords come from the env file (.env).
set -euo pipefail
for service in ingest outreach notify; do
  variable="${service^^}_DB_PASSWORD"
  password="${!variable:?set $variable in .env}"
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    --set=name="$service" --set=password="$password" <<'SQL'
CREATE ROLE :"name" LOGIN PASSWORD :'password';
CREATE DATABASE :"name" OWNER :"name";
REVOKE ALL ON DATABASE :"name" FROM PUBLIC;
SQL
done
