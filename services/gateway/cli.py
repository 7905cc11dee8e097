"""`voxcast serve gateway`, `voxcast up` and `voxcast user add`."""

from __future__ import annotations

import getpass
import sys


def register(commands, serve_commands) -> None:
    serve = serve_commands.add_parser("gateway", help="run the gateway (REST, WebSocket, viewer)")
    serve.add_argument("--port", type=int, default=None, help="HTTP port (default: VOXCAST_GATEWAY_PORT)")
    serve.add_argument("--host", default="0.0.0.0", help="listen address (default: all)")
    serve.set_defaults(func=_serve)

    up = commands.add_parser("up", help="run catalog, render and gateway on this machine")
    up.add_argument("--port", type=int, default=8000, help="viewer HTTP port (default 8000)")
    up.add_argument("--host", default="127.0.0.1", help="listen address (default 127.0.0.1)")
    up.add_argument("--demo", action="store_true", help="import the synthetic PET/CT demo study")
    up.add_argument("--demo-size", default="small", choices=["small", "medium", "large"])
    up.add_argument(
        "--open-loopback",
        action="store_true",
        help="no sign-in at all; only on 127.0.0.1 (a single-user laptop)",
    )
    up.set_defaults(func=_up)

    user = commands.add_parser("user", help="manage the gateway's user accounts")
    user_commands = user.add_subparsers(dest="user_command", metavar="ACTION", required=True)
    add = user_commands.add_parser("add", help="add a user")
    add.add_argument("username")
    add.add_argument("--role", choices=["admin", "clinician"], default="clinician")
    add.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input (else: prompt)"
    )
    add.set_defaults(func=_user_add)


def _serve(args) -> int:
    import uvicorn
    from voxcast.gateway.app import create_app, server_config

    from voxcast.config import get_settings

    settings = get_settings()
    port = settings.gateway_port if args.port is None else args.port
    app = create_app(settings)
    uvicorn.Server(server_config(app, host=args.host, port=port, log_level=settings.log_level.lower())).run()
    return 0


def _up(args) -> int:
    from voxcast.gateway.stack import run_up

    from voxcast.cli import VoxcastCliError
    from voxcast.config import get_settings

    try:
        return run_up(
            get_settings(),
            port=args.port,
            host=args.host,
            demo=args.demo,
            demo_size=args.demo_size,
            open_loopback=args.open_loopback,
        )
    except (ValueError, RuntimeError) as exc:
        raise VoxcastCliError(str(exc)) from None


def _user_add(args) -> int:
    from voxcast.gateway.auth.store import Store

    from voxcast.cli import VoxcastCliError
    from voxcast.config import get_settings

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"password for {args.username}: ")
        if getpass.getpass("again: ") != password:
            raise VoxcastCliError("the passwords differ")
    try:
        Store.from_settings(get_settings()).add_user(args.username, password, args.role)
    except ValueError as exc:
        raise VoxcastCliError(str(exc)) from None
    print(f"user {args.username} ({args.role}) added")
    return 0
