"""`aigc serve`: serve models over HTTP with uvicorn. Flags are the documented fields of ServeSettings; the settings
travel to uvicorn's worker processes as AIGC_SERVE_* environment variables."""

from __future__ import annotations

import argparse
from pathlib import Path

EXAMPLES = """examples:
  aigc serve runs/mnist                                   # http://127.0.0.1:8000/ , no keys, loopback only
  aigc keys add keys.txt --name alice                     # prints a new key once; keys.txt keeps its hash
  aigc serve runs/mnist runs/gan --api-keys keys.txt --host 0.0.0.0 --workers 2
  aigc serve digits=runs/mnist/checkpoints/004000.safetensors   # name=path chooses the served name
  aigc serve risk=runs/news+runs/news-fgm+runs/news-lora  # classifiers as one model: probabilities averaged
  aigc serve support=runs/support --mask-prompts          # an assistant (aigc assistant create) on the chat route
"""


def register(commands) -> None:
    from aigc.cli.options import add_command
    from aigc.serving.settings import ServeSettings

    parser = add_command(commands, "serve", "serve models over HTTP (API, web page, metrics)", EXAMPLES)
    parser.add_argument(
        "models",
        nargs="+",
        metavar="MODEL",
        help="run directory, checkpoint, assistant or Stable Diffusion directory, optionally NAME=PATH; "
        "NAME=RUN+RUN+... serves classifier runs as one model (an ensemble)",
    )
    group = parser.add_argument_group("service")
    for name, info in ServeSettings.model_fields.items():
        if not info.description:
            continue
        flag, kind = "--" + name.replace("_", "-"), info.annotation
        text = f"{info.description} (default: {info.default})"
        if kind is bool:
            group.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=None, help=text)
        else:
            convert = Path if "Path" in str(kind) else kind
            group.add_argument(flag, dest=name, type=convert, default=None, help=text, metavar=name.upper())
    parser.set_defaults(run=run)


def run(args) -> int:
    import atexit
    import os
    import shutil
    import signal
    import tempfile

    import uvicorn

    from aigc.core.device import resolve_device
    from aigc.serving.access import read_key_file
    from aigc.serving.app import LOG_CONFIG, json_logger
    from aigc.serving.settings import ServeSettings, load_settings

    flags = {
        name: getattr(args, name)
        for name, info in ServeSettings.model_fields.items()
        if info.description and getattr(args, name) is not None
    }
    settings = load_settings(models=served_checkpoints(args.models), **flags)
    # what would otherwise fail in every worker, or only in a log line, fails here in one line
    if settings.api_keys:
        read_key_file(settings.api_keys)
    resolve_device(settings.device)
    check_port_free(settings.host, settings.port)
    os.environ.update(settings.to_environment())
    if settings.workers > 1:
        # each worker counts in its own files; /metrics sums them (see serving/metrics.py)
        metrics_dir = tempfile.mkdtemp(prefix="aigc-metrics-")
        atexit.register(shutil.rmtree, metrics_dir, ignore_errors=True)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    keyed = bool(settings.api_keys or settings.api_key_hashes)
    url = f"http://{settings.host}:{settings.port}/"
    json_logger().info(f"serving {', '.join(settings.models)} at {url}", extra={"fields": {"api_keys": keyed}})
    # uvicorn stops on SIGTERM once the requests in flight are answered, then raises the signal again for its
    # caller; a stop on request is a clean exit (status 0) here, as process managers and load balancers expect.
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    uvicorn.run(
        "aigc.serving.app:app_from_environment",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_config=LOG_CONFIG,
        access_log=False,  # the app logs each request itself, as JSON
    )
    return 0


def served_checkpoints(specs: list[str]) -> dict[str, Path | list[Path]]:
    """{served name: checkpoint file} from `PATH` or `NAME=PATH` arguments: a run directory's newest complete
    checkpoint (or a directory a family reads as it is: a Stable Diffusion pipeline), named after the directory;
    `NAME=PATH+PATH+...` an ensemble's checkpoints."""
    from aigc.core.errors import UserError

    checkpoints: dict[str, Path | list[Path]] = {}
    for spec in specs:
        name, _, paths = spec.rpartition("=")
        parts = members(paths)
        found = [served_checkpoint(Path(path)) for path in parts]
        if len(found) > 1 and not name:
            raise UserError(f"{spec}: name the ensemble, as NAME={paths}")
        if len(found) > 1:
            check_members(parts, found)
        name = name or (Path(paths).resolve().name if Path(paths).is_dir() else Path(paths).stem)
        if name in checkpoints:
            raise UserError(f"two models are named {name!r}; name them apart with NAME=PATH")
        checkpoints[name] = found if len(found) > 1 else found[0]
    return checkpoints


def members(paths: str) -> list[str]:
    """The paths of `PATH+PATH+...`: split at each "+" that does not lie inside an existing path's name."""
    parts, pending = [], ""
    for piece in paths.split("+"):
        pending = f"{pending}+{piece}" if pending else piece
        if Path(pending).exists():
            parts.append(pending)
            pending = ""
    if pending:  # no path exists there: split it as written (the missing one is named when it is read)
        parts += pending.split("+")
    return parts


def check_members(parts: list[str], checkpoints: list[Path]) -> None:
    """UserError unless every checkpoint of an ensemble is a labelling model's, of the first one's labels (a
    labelling run config holds its class names as `labels`)."""
    from aigc.core.checkpoint import read_header
    from aigc.families.labelling import check_member
    from aigc.families.registry import family_of, from_json_dict

    configs = [from_json_dict(read_header(checkpoint)["config"], str(checkpoint)) for checkpoint in checkpoints]
    for part, config in zip(parts, configs, strict=True):
        check_member(part, family_of(config), getattr(config, "labels", ()), getattr(configs[0], "labels", ()))


def served_checkpoint(path: Path) -> Path:
    """The checkpoint `aigc serve` loads of `path` (an assistant: its directory); a missing or broken file fails
    here, before the server starts."""
    from aigc.assistant import is_assistant, manifest_of
    from aigc.core.checkpoint import read_header
    from aigc.families.registry import checkpoint_path

    if is_assistant(path):
        manifest_of(path)
        return path
    if path.is_dir():
        return checkpoint_path(path)
    read_header(path)
    return path


def check_port_free(host: str, port: int) -> None:
    import socket

    from aigc.core.errors import UserError

    if port == 0:
        return
    try:
        with socket.create_server((host, port)):
            pass
    except OSError as error:
        raise UserError(f"cannot listen on {host}:{port} ({error.strerror}); choose another --port or --host") from None
