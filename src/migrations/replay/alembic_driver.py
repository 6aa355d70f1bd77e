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
  {"op": "models", "url": "<scratch URL>", "attribute": "<module:attr or null>"}
      -> {"ok": true, "models": <bool>, "files": ["<path>", ...]}
     runs the models' metadata.create_all on the URL (see models below)
  {"op": "bootstrap", "url": "<scratch URL>", "callable": "<module:function>"}
      -> {"ok": true}
     calls the project's function with the URL, before the base revision
  {"op": "quit"}

One process serves every step: Python, SQLAlchemy, Alembic, env.py's imports
and the parsed revision files are loaded once, not once per revision.
"""

import importlib
import json
import logging.config
import os
import site
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
            if request.get("op") == "models":
                reply(ok=True, **models(config, script, request["url"],
                                        request.get("attribute"), versions))
                continue
            if request.get("op") == "bootstrap":
                bootstrap(request["callable"], request["url"])
                reply(ok=True)
                continue
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


def models(config, script, url, attribute, versions):
    """Creates the tables the application's SQLAlchemy models describe on
    the database at url, and names the Python files they were loaded from.

    The metadata is the configured "module:attribute" (a MetaData, or a
    declarative base whose .metadata is one), else what env.py hands to
    context.configure as target_metadata: env.py runs as Alembic runs it for
    autogenerate, in an EnvironmentContext whose migration function yields
    no step, so no migration runs (env.py still connects to the driver's own
    database, which the caller throws away).
    """
    if attribute:
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        module, _, names = attribute.partition(":")
        metadata = importlib.import_module(module)
        for name in names.split("."):
            metadata = getattr(metadata, name)
        metadata = getattr(metadata, "metadata", metadata)
    else:
        from alembic.runtime.environment import EnvironmentContext

        with EnvironmentContext(config, script, fn=lambda rev, context: []) as environment:
            script.run_env()
            metadata = environment.context_opts.get("target_metadata")
    # Alembic also takes a sequence of MetaData objects.
    metadatas = [m for m in (metadata if isinstance(metadata, (list, tuple)) else [metadata])
                 if m is not None]
    if not metadatas:
        return {"models": False, "files": []}
    from sqlalchemy import create_engine

    engine = create_engine(url)
    try:
        for each in metadatas:
            each.create_all(engine)
    finally:
        engine.dispose()
    return {"models": True, "files": loaded_files(script, versions)}


def bootstrap(callable, url):
    """Calls the project's module:function with the scratch database's
    URL: whatever creates the tables the base revision expects (a
    metadata.create_all, an older tool's migrations). The module is
    imported as env.py's would be, from the project's directory."""
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    module, _, name = callable.partition(":")
    function = getattr(importlib.import_module(module), name)
    function(url)


def loaded_files(script, versions):
    """The Python files this process loaded that belong to the project, not
    to Python or an installed package: env.py, the models and whatever
    they import. A change to any of them may change the models."""
    outside = {os.path.realpath(p) for p in
               [sys.prefix, sys.base_prefix, sys.exec_prefix] + site.getsitepackages()}
    outside.update(versions)
    outside.add(os.path.realpath(site.getusersitepackages()))
    me = os.path.realpath(__file__)
    files = {os.path.realpath(os.path.join(script.dir, "env.py"))}
    for module in list(sys.modules.values()):
        path = getattr(module, "__file__", None)
        if not path or not path.endswith(".py"):
            continue
        path = os.path.realpath(path)
        if path != me and not any(path.startswith(o + os.sep) for o in outside):
            files.add(path)
    return sorted(files)


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
