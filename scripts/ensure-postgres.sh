#!/usr/bin/env bash
# ensure-postgres.sh makes sure a PostgreSQL server answers on 127.0.0.1:5432 and that
# the database "test" exists. It starts an installed cluster if it is down and installs
# Debian's postgresql package only when no server is installed at all. Idempotent and
# non-interactive, so tests and CI can call it before every run.
set -euo pipefail

HOST=${PGHOST_ENSURE:-127.0.0.1}
PORT=${PGPORT_ENSURE:-5432}
DB=${PGDATABASE_ENSURE:-test}

log() { echo "ensure-postgres: $*" >&2; }

as_postgres() {
	# Run a client command as a role that exists on a fresh Debian cluster.
	if [ "$(id -u)" = 0 ] && id postgres >/dev/null 2>&1; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

is_up() { pg_isready -q -h "$HOST" -p "$PORT" >/dev/null 2>&1; }

wait_up() {
	for _ in $(seq 1 60); do
		is_up && return 0
		sleep 0.5
	done
	return 1
}

if ! command -v pg_isready >/dev/null 2>&1 && [ -d /usr/lib/postgresql ]; then
	PATH="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1):$PATH"
	export PATH
fi

if ! command -v pg_ctlcluster >/dev/null 2>&1 || [ -z "$(ls /etc/postgresql 2>/dev/null)" ]; then
	log "no PostgreSQL installation found; installing Debian's postgresql"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq </dev/null
	apt-get install -y -qq postgresql </dev/null
fi

if ! is_up; then
	for ver in $(ls /etc/postgresql); do
		log "starting cluster $ver/main"
		pg_ctlcluster --skip-systemctl-redirect "$ver" main start </dev/null || true
	done
	if ! wait_up; then
		log "PostgreSQL did not come up on $HOST:$PORT"
		exit 1
	fi
fi

# Create the test database if it is missing; either role may be the superuser here.
for role in postgres root; do
	if as_postgres psql -h "$HOST" -p "$PORT" -U "$role" -d postgres -tAc "SELECT 1" >/dev/null 2>&1 </dev/null; then
		if [ "$(as_postgres psql -h "$HOST" -p "$PORT" -U "$role" -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB'" </dev/null)" != 1 ]; then
			log "creating database $DB"
			as_postgres psql -h "$HOST" -p "$PORT" -U "$role" -d postgres -c "CREATE DATABASE \"$DB\"" </dev/null >/dev/null
		fi
		log "PostgreSQL is up on $HOST:$PORT, database $DB exists"
		exit 0
	fi
done
log "cannot connect to PostgreSQL on $HOST:$PORT as postgres or root"
exit 1
