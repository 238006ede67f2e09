"""Checks that keep docs/deploy.md, docs/widget.md and deploy/ true to the code: the setting names
they mention, the nginx example (its upload size, its websocket block, `nginx -t` when nginx is
installed) and the identify-signing examples (recomputed here, and run with Node.js and PHP when
those are installed)."""

from __future__ import annotations

import hashlib
import hmac
import html
import json
import re
import shutil
import socket
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent
DEPLOY_DOC = ROOT / "docs" / "deploy.md"
WIDGET_DOC = ROOT / "docs" / "widget.md"
DEPLOY_DIR = ROOT / "deploy"
NGINX_CONF = DEPLOY_DIR / "nginx.conf"
ENV_FILE = DEPLOY_DIR / "supportbot.env.example"
LOADER = ROOT / "static" / "supportbot" / "widget.js"

# Looks like an environment variable: upper-case words joined by underscores (DATABASE_URL).
NAME_RE = re.compile(r"\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b")
# Upper-case names in the docs that are not ours to define.
NOT_SETTINGS = {"JSON_HEX_TAG"}  # PHP's json_encode flag, in the identify data-block advice
SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
TIME_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600}


def _env_names() -> set[str]:
    """What settings.py reads from the environment, and what .env.example lists."""
    source = (ROOT / "supportbot" / "settings.py").read_text()
    names = set(re.findall(r'(?:env_[a-z]+|os\.environ\.get)\(\s*"([A-Z][A-Z0-9_]*)"', source))
    names |= set(re.findall(r"^([A-Z][A-Z0-9_]*)=", (ROOT / ".env.example").read_text(), re.MULTILINE))
    return names


def _settings_assigned() -> set[str]:
    """Django settings settings.py sets (SECURE_PROXY_SSL_HEADER…), env-driven or not."""
    source = (ROOT / "supportbot" / "settings.py").read_text()
    return set(re.findall(r"^([A-Z][A-Z0-9_]*)\s*[:=]", source, re.MULTILINE))


def _code_block(doc: Path, language: str, containing: str) -> str:
    blocks = re.findall(rf"^```{language}\n(.*?)^```", doc.read_text(), re.MULTILINE | re.DOTALL)
    matching = [block for block in blocks if containing in block]
    assert matching, f"{doc.name} has no ```{language} block with {containing!r}"
    return str(matching[0])


def _nginx_conf() -> str:
    """deploy/nginx.conf without its comments (no directive there contains a #)."""
    return re.sub(r"#[^\n]*", "", NGINX_CONF.read_text())


def _nginx_block(conf: str, opening: str) -> str:
    start = conf.index(opening)
    depth = 0
    for index in range(conf.index("{", start), len(conf)):
        depth += {"{": 1, "}": -1}.get(conf[index], 0)
        if depth == 0:
            return conf[start : index + 1]
    raise AssertionError(f"unbalanced braces after {opening!r}")


def _nginx_values(conf: str, directive: str) -> list[str]:
    return re.findall(rf"^\s*{directive}\s+([^;]+);", conf, re.MULTILINE)


def _nginx_seconds(value: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([smh]?)", value.strip()).groups()  # type: ignore[union-attr]
    return int(number) * TIME_UNITS[unit]


# --- Setting names ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [DEPLOY_DOC, WIDGET_DOC, *sorted(p for p in DEPLOY_DIR.iterdir() if p.is_file())],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_every_setting_name_in_the_docs_exists(path: Path) -> None:
    known = _env_names() | _settings_assigned() | NOT_SETTINGS
    missing = sorted(set(NAME_RE.findall(path.read_text())) - known)
    assert not missing, f"{path.relative_to(ROOT)} names settings that supportbot/settings.py lacks: {missing}"


def test_the_production_env_file_sets_only_what_the_app_reads() -> None:
    # Commented-out lines too: they are meant to be switched on.
    names = re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", ENV_FILE.read_text(), re.MULTILINE)
    assert names
    assert sorted(set(names) - _env_names()) == []


def test_the_docs_say_which_setting_sets_the_heartbeat() -> None:
    assert "CHAT_HEARTBEAT_SECONDS" in DEPLOY_DOC.read_text()
    assert settings.CHAT_HEARTBEAT_SECONDS == 25  # the figure docs/deploy.md and deploy/ quote


# --- nginx -----------------------------------------------------------------------------------


def test_nginx_accepts_the_body_of_the_largest_upload() -> None:
    from chat.api import MULTIPART_OVERHEAD

    limit = max(settings.CHAT_IMAGE_MAX_BYTES, settings.CHAT_AUDIO_MAX_BYTES) + MULTIPART_OVERHEAD
    values = _nginx_values(_nginx_conf(), "client_max_body_size")
    assert values, "deploy/nginx.conf sets no client_max_body_size (nginx's default is 1 MiB)"
    for value in values:
        number, unit = re.fullmatch(r"(\d+)([kKmMgG]?)", value.strip()).groups()  # type: ignore[union-attr]
        size = int(number) * SIZE_UNITS[unit.lower()]
        assert size >= limit, f"client_max_body_size {value} is below the upload limit of {limit} bytes"


def test_the_nginx_websocket_location_upgrades_and_outlasts_the_page_heartbeat() -> None:
    conf = _nginx_conf()
    assert re.search(r"map \$http_upgrade \$connection_upgrade \{[^}]*default\s+upgrade;[^}]*\"\"\s+close;", conf)
    block = _nginx_block(conf, "location /ws/")
    for line in (
        "proxy_http_version 1.1;",
        "proxy_set_header Upgrade $http_upgrade;",
        "proxy_set_header Connection $connection_upgrade;",
        "proxy_buffering off;",
    ):
        assert line in block
    # The page gives up on a socket silent for 2.5 heartbeats; nginx must not cut it before.
    page_limit = 2.5 * settings.CHAT_HEARTBEAT_SECONDS
    for directive in ("proxy_read_timeout", "proxy_send_timeout"):
        (value,) = _nginx_values(block, directive)
        assert _nginx_seconds(value) > page_limit, f"{directive} {value} is not above {page_limit} s"


def test_nginx_replaces_x_forwarded_for_in_every_proxied_location() -> None:
    # Daphne --proxy-headers takes the first address: appending would let clients choose theirs.
    conf = _nginx_conf()
    assert "$proxy_add_x_forwarded_for" not in conf
    assert conf.count("proxy_pass ") == conf.count("proxy_set_header X-Forwarded-For $remote_addr;")
    assert conf.count("proxy_pass ") == conf.count("proxy_set_header X-Forwarded-Proto $scheme;")


def test_nginx_keeps_metrics_private() -> None:
    assert "deny all;" in _nginx_block(_nginx_conf(), "location = /metrics")


def test_every_nginx_excerpt_in_deploy_md_is_in_deploy_nginx_conf() -> None:
    conf_lines = {line.strip() for line in NGINX_CONF.read_text().splitlines()}
    excerpts = re.findall(r"^```nginx\n(.*?)^```", DEPLOY_DOC.read_text(), re.MULTILINE | re.DOTALL)
    assert excerpts
    for excerpt in excerpts:
        stray = [line for line in excerpt.splitlines() if line.strip() and line.strip() not in conf_lines]
        assert not stray, f"docs/deploy.md shows nginx lines that deploy/nginx.conf lacks: {stray}"


def _nginx_binary() -> str | None:
    found = shutil.which("nginx")
    if found:
        return found
    return next((str(p) for p in (Path("/usr/sbin/nginx"), Path("/usr/local/sbin/nginx")) if p.exists()), None)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "chat.example.com")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def test_deploy_nginx_conf_passes_nginx_t(tmp_path: Path) -> None:
    nginx = _nginx_binary()
    if nginx is None:
        # Not `require()`: nginx is an optional tool, not part of the test setup, so CI skips too.
        pytest.skip("nginx is not installed (an optional tool, also in CI): deploy/nginx.conf not run through nginx -t")
    cert, key = _self_signed_certificate(tmp_path)
    site = NGINX_CONF.read_text()
    # nginx -t binds the listening sockets: free loopback ports instead of 80 and 443 (which
    # need root and may be taken), and no IPv6 twins (they would be duplicates then).
    site = re.sub(r"^\s*listen \[::\]:.*$", "", site, flags=re.MULTILINE)
    site = re.sub(r"(listen\s+)(80|443)\b", lambda m: f"{m.group(1)}127.0.0.1:{_free_port()}", site)
    site = re.sub(r"(ssl_certificate\s+)[^;]+;", lambda m: f'{m.group(1)}"{cert}";', site)
    site = re.sub(r"(ssl_certificate_key\s+)[^;]+;", lambda m: f'{m.group(1)}"{key}";', site)
    (tmp_path / "supportbot.conf").write_text(site)
    # A minimal main config that includes it in its http block, as Debian's includes conf.d/*.conf;
    # every path nginx -t touches is in tmp_path.
    names = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    temp_paths = "".join(f'{name}_temp_path "{tmp_path / name}";\n' for name in names)
    (tmp_path / "nginx.conf").write_text(
        f'pid "{tmp_path / "nginx.pid"}";\nerror_log "{tmp_path / "error.log"}";\nevents {{}}\n'
        f'http {{\n{temp_paths}access_log off;\ninclude "{tmp_path / "supportbot.conf"}";\n}}\n'
    )
    command = [nginx, "-t", "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")]
    help_text = subprocess.run([nginx, "-h"], capture_output=True, text=True, timeout=30)
    if "-e filename" in help_text.stdout + help_text.stderr:  # nginx 1.19.5 and later
        command += ["-e", str(tmp_path / "error.log")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr


# --- Identify signing (docs/widget.md) -------------------------------------------------------


def _worked_example() -> dict[str, str]:
    text = WIDGET_DOC.read_text()
    rows = dict(re.findall(r"^\| (identify secret|`user_id`|`email`|signature[^|]*?) \| `([^`]*)` \|$", text, re.M))
    assert len(rows) == 5, f"the worked example in docs/widget.md is incomplete: {rows}"
    return {
        "secret": rows["identify secret"],
        "user_id": rows["`user_id`"],
        "email": rows["`email`"],
        "signature": rows["signature"],
        "signature_no_email": rows["signature with `email` empty"],
    }


def test_the_worked_example_is_the_hmac_of_the_identify_payload() -> None:
    from chat.sites import identify_payload

    example = _worked_example()
    key = example["secret"].encode()
    signed = identify_payload(user_id=example["user_id"], email=example["email"])
    assert hmac.new(key, signed, hashlib.sha256).hexdigest() == example["signature"]
    signed = identify_payload(user_id=example["user_id"], email="")
    assert hmac.new(key, signed, hashlib.sha256).hexdigest() == example["signature_no_email"]


def _python_example() -> object:
    namespace: dict[str, object] = {}
    exec(_code_block(WIDGET_DOC, "python", "def supportbot_signature"), namespace)
    return namespace["supportbot_signature"]


def test_the_python_example_gives_the_worked_signature() -> None:
    sign = _python_example()
    example = _worked_example()
    assert callable(sign)
    assert sign(example["secret"], example["user_id"], example["email"]) == example["signature"]
    assert sign(example["secret"], example["user_id"]) == example["signature_no_email"]


@pytest.mark.django_db
def test_a_signature_made_as_documented_is_accepted_by_the_server() -> None:
    from chat.models import Site
    from chat.sites import identify_secret, identify_verify

    site = Site.objects.create(name="Docs shop", allowed_origins="https://shop.example.com")
    sign = _python_example()
    assert callable(sign)
    secret = identify_secret(site)  # what the Site admin page shows
    for email in ("ana@example.com", ""):
        signature = sign(secret, "cust_1042", email)
        assert identify_verify(site, user_id="cust_1042", email=email, signature=signature)
    assert not identify_verify(site, user_id="cust_1043", email="", signature=sign(secret, "cust_1042", ""))


def _run_example(tool: str, source: str, suffix: str, tmp_path: Path) -> str:
    script = tmp_path / f"example{suffix}"
    script.write_text(source)
    result = subprocess.run([tool, str(script)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_the_nodejs_example_gives_the_worked_signature(tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (an optional tool): the Node.js signing example was not run")
    example = _worked_example()
    args = json.dumps(example["secret"]), json.dumps(example["user_id"]), json.dumps(example["email"])
    source = _code_block(WIDGET_DOC, "js", "createHmac") + (
        f"console.log(supportbotSignature({args[0]}, {args[1]}, {args[2]}));\n"
        f"console.log(supportbotSignature({args[0]}, {args[1]}));\n"
    )
    output = _run_example(node, source, ".js", tmp_path)
    assert output.split() == [example["signature"], example["signature_no_email"]]


def test_the_php_example_gives_the_worked_signature(tmp_path: Path) -> None:
    php = shutil.which("php")
    if php is None:
        pytest.skip("php is not installed (an optional tool): the PHP signing example was not run")
    example = _worked_example()
    args = [json.dumps(example[name]) for name in ("secret", "user_id", "email")]
    source = _code_block(WIDGET_DOC, "php", "hash_hmac") + (
        f'echo supportbot_signature({args[0]}, {args[1]}, {args[2]}), "\\n";\n'
        f'echo supportbot_signature({args[0]}, {args[1]}), "\\n";\n'
    )
    output = _run_example(php, source, ".php", tmp_path)
    assert output.split() == [example["signature"], example["signature_no_email"]]


# --- The tag and the loader ------------------------------------------------------------------


@pytest.mark.django_db
def test_the_documented_tag_is_the_one_the_site_admin_page_shows(admin_client) -> None:
    from chat.models import Site

    site = Site.objects.create(name="Docs shop", allowed_origins="https://shop.example.com")
    tag = _code_block(WIDGET_DOC, "html", "widget.js").strip()
    expected = tag.replace("https://chat.example.com", "http://testserver").replace("pk_…", site.public_key)
    response = admin_client.get(f"/admin/chat/site/{site.pk}/change/")
    assert response.status_code == 200
    assert expected in html.unescape(response.content.decode())


def test_the_documented_api_is_what_the_loader_offers() -> None:
    if not LOADER.exists():
        pytest.skip("static/supportbot/widget.js is not in the tree yet")
    source = LOADER.read_text()
    for name in ("open", "close", "setContext", "identify"):
        assert re.search(rf"\b{name}\b", source), f"widget.js has no {name}"
    assert re.search(r"\.q\b|\bq:", source), "widget.js does not read the SupportBot.q queue"
    assert re.search(r"dataset\.site\b|data-site\b", source), "widget.js does not read data-site"
    assert "supportbot:unread" in source and re.search(r"\bunread\b", source)
