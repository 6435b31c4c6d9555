#!/usr/bin/env python3
"""Fill in deploy/nginx.conf for one site and print it (or write it with -o).

Parameters come from the environment (the same variables the app reads, see
.env.example), from an env file (--env-file, default ./.env when present), and
from KEY=VALUE arguments, later ones winning:

    DOMAIN=ai.example.com TLS_CERT=/etc/ssl/ai.crt TLS_KEY=/etc/ssl/ai.key \\
        deploy/render_nginx.py -o /etc/nginx/conf.d/corporate.conf

Needs only the standard library (no Django).
"""

import argparse
import os
import re
import sys
from pathlib import Path

DEPLOY = Path(__file__).resolve().parent
ROOT = DEPLOY.parent
TEMPLATE = DEPLOY / "nginx.conf"
PLACEHOLDER = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")
# Values go into nginx directives: no whitespace, quotes, braces or semicolons.
SAFE_VALUE = re.compile(r"^[^\s;{}'\"#]+$")


class ConfigError(Exception):
    pass


def read_env_file(path):
    values = {}
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        values[key.strip()] = value.strip()
    return values


def _int(env, name, default):
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not (raw.isascii() and raw.isdigit()):
        raise ConfigError(f"{name} must be a whole number, not {raw!r}")
    return int(raw)


def parameters(env):
    """Every template parameter, from the app's variables and their defaults."""
    var_dir = Path(env.get("VAR_DIR") or ROOT / "var")
    https_port = _int(env, "HTTPS_PORT", 443)
    params = {
        "DOMAIN": env.get("DOMAIN", ""),
        "TLS_CERT": env.get("TLS_CERT", ""),
        "TLS_KEY": env.get("TLS_KEY", ""),
        "LISTEN_ADDRESS": env.get("LISTEN_ADDRESS", "0.0.0.0"),
        "HTTP_PORT": str(_int(env, "HTTP_PORT", 80)),
        "HTTPS_PORT": str(https_port),
        # The port in redirects and forwarded host names; browsers omit 443.
        "HTTPS_PORT_SUFFIX": "" if https_port == 443 else f":{https_port}",
        "UPSTREAM": env.get("UPSTREAM") or f"{env.get('BIND') or '127.0.0.1'}:{_int(env, 'PORT', 8000)}",
        "UPSTREAM_KEEPALIVE_TIMEOUT": str(max(1, _int(env, "WEB_KEEPALIVE", 5) - 1)),
        "PROXY_TIMEOUT": str(_int(env, "WEB_TIMEOUT", 150)),
        "CLIENT_MAX_BODY_MB": str(_int(env, "UPLOAD_MAX_MB", 50) + 1),
        # The same Strict-Transport-Security that Django would send.
        "HSTS": f"max-age={_int(env, 'SECURE_HSTS_SECONDS', 31536000)}; includeSubDomains"
        + ("; preload" if env.get("SECURE_HSTS_PRELOAD", "").strip().lower() in {"1", "true", "yes", "on"} else ""),
        "STATIC_ROOT": str(Path(env.get("STATIC_ROOT") or var_dir / "static").resolve()),
        "MEDIA_ROOT": str(Path(env.get("MEDIA_ROOT") or var_dir / "media").resolve()),
        "ERROR_PAGES": str(Path(env.get("ERROR_PAGES") or DEPLOY / "errors").resolve()),
    }
    for name in ("DOMAIN", "TLS_CERT", "TLS_KEY"):
        if not params[name]:
            raise ConfigError(f"{name} must be set (see deploy/render_nginx.py)")
    for name, value in params.items():
        if name != "HSTS" and value and not SAFE_VALUE.match(value):
            raise ConfigError(f"{name} cannot go into nginx.conf as it is: {value!r}")
    return params


def render(env, template=TEMPLATE):
    params = parameters(env)
    text = Path(template).read_text()
    missing = sorted({name for name in PLACEHOLDER.findall(text) if name not in params})
    if missing:
        raise ConfigError(f"the template uses unknown parameters: {', '.join(missing)}")
    return PLACEHOLDER.sub(lambda match: params[match.group(1)], text)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("assignments", nargs="*", metavar="KEY=VALUE", help="parameters that win over the environment")
    parser.add_argument("--env-file", help="KEY=VALUE lines to read first (default: .env when present)")
    parser.add_argument("-o", "--output", help="write here instead of stdout")
    args = parser.parse_args(argv)

    env = {}
    env_file = args.env_file or (ROOT / ".env" if (ROOT / ".env").exists() else None)
    if env_file:
        env.update(read_env_file(env_file))
    env.update(os.environ)
    for item in args.assignments:
        if "=" not in item:
            parser.error(f"expected KEY=VALUE, not {item!r}")
        key, value = item.split("=", 1)
        env[key] = value
    try:
        text = render(env)
    except ConfigError as exc:
        sys.stderr.write(f"render_nginx: {exc}\n")
        return 2
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
