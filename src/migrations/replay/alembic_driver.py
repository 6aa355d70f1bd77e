"""migsnap's Alembic replay driver.

migsnap runs this file with the project's own Python and feeds it one JSON
request per line on stdin; each answer is one JSON line on the protocol
channel (the process's original stdout, which is then pointed at stderr so
that whatever migrations print cannot corrupt the protocol).

Requests:
  {"op": "upgrade", "target": "<rev or heads>"}   -> {"ok": true}
                                                   -> {"ok": false, "error": "...",
                                                       "file": "...", "traceback": "..."}
  {"op": "downgrade", "target": "<rev@-1 or a parent>"}  -> the same answers
  {"op": "quit"}

One process serves every step: Python, SQLAlchemy, Alembic, env.py's imports
and the parsed revision files are loaded once, not once per revision.
"""

import json
import logging.config
import os
import sys
import traceback


def main():
    ini, toml, section, url = sys.argv[1:5]
    versions = [os.path.realpath(p) for p in sys.argv[5:]]
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)

    def reply(**answer):
        protocol.write(json.dumps(answer) + "\n")
        protocol.flush()

    try:
        from alembic import command
        from alembic.config import Config
        from alembic.script import ScriptDirectory

        if toml != "-":
            # pyproject.toml [tool.alembic] (Alembic 1.16+), with or without an ini.
            config = Config(None if ini == "-" else ini, ini_section=section, toml_file=toml)
        else:
            config = Config(ini, ini_section=section)
        # The same way a temporary copy of the ini would, but the real file
        # stays where it is, so %(here)s keeps meaning the project.
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
        script = ScriptDirectory.from_config(config)
        # Every command asks for the script directory again, which re-reads
        # every revision file; one parse serves the whole replay.
        ScriptDirectory.from_config = classmethod(lambda cls, cfg: script)
        # env.py runs once per step and usually calls fileConfig on the same
        # ini each time; configuring logging once is enough.
        once(logging.config, "fileConfig")
    except BaseException as error:  # noqa: BLE001 - reported, not swallowed
        reply(ok=False, error=describe(error), file=culprit(error, versions),
              traceback=traceback.format_exc())
        return 1
    reply(ok=True, ready=True)

    for line in sys.stdin:
        request = json.loads(line)
        if request.get("op") == "quit":
            break
        try:
            if request.get("op") == "downgrade":
                # migsnap test's round trip: undo one revision.
                command.downgrade(config, request["target"])
            else:
                command.upgrade(config, request["target"])
        except BaseException as error:  # noqa: BLE001
            reply(ok=False, error=describe(error), file=culprit(error, versions),
                  traceback=traceback.format_exc())
            if isinstance(error, (KeyboardInterrupt, SystemExit)):
                return 1
            continue
        reply(ok=True)
    return 0


def once(module, name):
    """Makes module.name do its work only the first time it is called with
    given arguments."""
    original = getattr(module, name)
    seen = set()

    def wrapper(*args, **kwargs):
        key = repr((args, sorted(kwargs.items())))
        if key in seen:
            return None
        seen.add(key)
        return original(*args, **kwargs)

    setattr(module, name, wrapper)


def describe(error):
    text = str(error).strip()
    first = text.splitlines()[0] if text else ""
    return "%s: %s" % (type(error).__name__, first) if first else type(error).__name__


def culprit(error, versions):
    """The innermost traceback frame inside a versions directory: the
    revision file whose code failed."""
    found = None
    tb = error.__traceback__
    while tb is not None:
        path = os.path.realpath(tb.tb_frame.f_code.co_filename)
        if any(path.startswith(v + os.sep) for v in versions):
            found = path
        tb = tb.tb_next
    return found


if __name__ == "__main__":
    sys.exit(main())
