#!/usr/bin/env bash
# Issue 4's replay and status targets, measured side by side with Alembic
# in the same run:
#   * `migsnap replay` of every revision (cold cache) against one
#     `alembic upgrade head` on an empty database, same project;
#   * `migsnap status` with the reference chain cached (mean of 20 runs).
# Uses the pinned Alembic in .venv/ (bash scripts/test-venv.sh).
#
#   bash benches/replay_compare.sh [REVISIONS]   (default 40)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
M=$ROOT/target/release/migsnap
PY=$ROOT/.venv/bin/python
N=${1:-40}
[[ -x $PY ]] || bash "$ROOT/scripts/test-venv.sh" >&2
[[ -x $M ]] || cargo build --release --bin migsnap >&2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
"$PY" -m alembic init -q migrations >/dev/null 2>&1 || "$PY" -m alembic init migrations >/dev/null
sed -i 's|^sqlalchemy.url = .*|sqlalchemy.url = sqlite:///app.db|' alembic.ini

# A history shaped like a real app's: every fourth revision creates a table,
# the others add a column, an index, or rebuild a table in batch mode.
prev=None
for i in $(seq 1 "$N"); do
    rev=$(printf 'r%04d' "$i")
    t=$(( (i - 1) / 4 + 1 ))
    case $((i % 4)) in
    1) body="op.create_table('t$t', sa.Column('id', sa.Integer, primary_key=True), sa.Column('name', sa.String(80), nullable=False), sa.Column('created_at', sa.BigInteger))" ;;
    2) body="op.add_column('t$t', sa.Column('extra_$i', sa.Text, nullable=True))" ;;
    3) body="op.create_index('ix_t${t}_name', 't$t', ['name'])" ;;
    0) body="with op.batch_alter_table('t$t') as b:
        b.alter_column('name', existing_type=sa.String(80), nullable=True)" ;;
    esac
    down=$([[ $prev == None ]] && echo None || echo "'$prev'")
    cat > "migrations/versions/${rev}_step.py" <<PY
"""step $i

Revision ID: $rev
Revises: ${prev/None/}
"""
from alembic import op
import sqlalchemy as sa

revision = '$rev'
down_revision = $down
branch_labels = None
depends_on = None


def upgrade():
    $body


def downgrade():
    pass
PY
    prev=$rev
done

now() { date +%s.%N; }
ms() { echo "scale=0; ($2 - $1) * 1000 / 1" | bc; }

rm -f app.db
t0=$(now); "$PY" -m alembic upgrade head >/dev/null 2>&1; t1=$(now)
alembic_ms=$(ms "$t0" "$t1")

"$M" init >/dev/null
printf '[migrations]\npython = "%s"\n' "$PY" > migsnap.toml
t0=$(now); /usr/bin/time -f '%M' -o rss.txt "$M" replay >/dev/null 2>&1; t1=$(now)
replay_ms=$(ms "$t0" "$t1")
replay_rss=$(cat rss.txt)
t0=$(now); "$M" replay >/dev/null 2>&1; t1=$(now)
cached_ms=$(ms "$t0" "$t1")

runs=20
t0=$(now)
for _ in $(seq $runs); do "$M" status app.db >/dev/null 2>&1 || true; done
t1=$(now)
status_ms=$(echo "scale=1; ($t1 - $t0) * 1000 / $runs" | bc)
/usr/bin/time -f '%M' -o rss.txt "$M" status app.db >/dev/null 2>&1 || true
status_rss=$(cat rss.txt)

# Built-in bisect over 1,000 snapshots: app.db is recorded 1,000 times
# (schema-only), and drifts (a hand-made table) from snapshot 700 on.
"$M" snapshot app.db --schema-only -m "s1" >/dev/null 2>&1
for i in $(seq 2 1000); do
    if [[ $i == 700 ]]; then
        "$PY" -c "import sqlite3; c = sqlite3.connect('app.db'); c.execute('CREATE TABLE hand_made (id INTEGER PRIMARY KEY)'); c.commit()"
    fi
    "$M" snapshot app.db --schema-only --allow-empty -m "s$i" >/dev/null 2>&1
done
t0=$(now); /usr/bin/time -f '%M' -o rss.txt "$M" --format json bisect drift app > bisect.json || true; t1=$(now)
bisect_ms=$(ms "$t0" "$t1")
bisect_rss=$(tail -1 rss.txt)
bisect_found=$("$PY" -c "import json; b = json.load(open('bisect.json')); print(b['outcome'], b['tested'], 'judged')")

echo "project: $N revisions (tables, columns, indexes, batch rebuilds)"
echo "  alembic upgrade head (empty db)     ${alembic_ms} ms"
echo "  migsnap replay (cold)               ${replay_ms} ms   ratio $(echo "scale=2; $replay_ms / $alembic_ms" | bc)   peak RSS ${replay_rss} KiB (migsnap only)"
echo "  migsnap replay (cached, no Python)  ${cached_ms} ms"
echo "  migsnap status (cached chain)       ${status_ms} ms (mean of $runs)   peak RSS ${status_rss} KiB"
echo "  migsnap bisect drift, 1000 snapshots ${bisect_ms} ms ($bisect_found)   peak RSS ${bisect_rss} KiB"
