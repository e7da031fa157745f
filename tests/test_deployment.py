"""EcoFed in a real Flower deployment on loopback: one SuperLink, two SuperNodes, `flwr run`.

Unlike the simulation tests, every piece runs as its own process and talks HTTP: the
SuperLink (deployment runtime, no ``--simulation``), two ``flower-supernode`` processes with
their partition in ``--node-config``, and ``flwr run`` submitting the FAB built from the
repository root. Each message exchange costs seconds of polling here, so the run is tiny:
two rounds (one upload, one replay), 200 samples per node. The deployment runs twice: with
``--insecure``, and as on real devices, with TLS (certificates made by the test) and
SuperNode authentication, where an unregistered node must be turned away.
"""

from __future__ import annotations

import datetime
import io
import ipaddress
import json
import subprocess
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ecofed_flwr.launch import (
    TlsFiles,
    find_free_port,
    flower_env,
    flower_executable,
    log_tail,
    start_superlink,
    start_supernode,
    stop_process,
    write_flwr_config,
)

pytestmark = pytest.mark.timeout(400)

REPO = Path(__file__).resolve().parents[1]
RUN_TIMEOUT_S = 300
REFUSAL_TIMEOUT_S = 60  # an unregistered node is refused at its first request

RUN_CONFIG = (
    "model='tiny_cnn' cut='block1' weights='random' input-size=16 dataset='synthetic' "
    "num-server-rounds=2 fraction-train=1.0 min-train-nodes=2 refresh='every:2' "
    "replay='paper' codec='paper' trainer='copies' batch-size=10 "
    # Fewer samples keep the server's training short on a busy 2-core machine; a dead node
    # fails the round in two minutes instead of the default fifteen.
    "samples-per-client=200 test-samples=200 round-timeout=120.0"
)


def test_fab_from_the_repository_root_is_small_and_carries_no_environment() -> None:
    from flwr.cli.build import build_fab_from_disk
    from flwr.common.constant import FAB_MAX_SIZE

    fab = build_fab_from_disk(REPO)
    names = zipfile.ZipFile(io.BytesIO(fab)).namelist()
    assert len(fab) < FAB_MAX_SIZE
    assert "src/ecofed_flwr/app/server_app.py" in names
    # .gitignore is honoured: no virtual environment, no outputs, no private Flower homes.
    assert not [n for n in names if n.startswith((".venv/", "outputs/", "tests/"))]


def _spawn(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=env, cwd=log.parent, start_new_session=True,
        )  # fmt: skip


def _tails(paths: list[Path]) -> str:
    return "".join(f"\n--- {p.name} ---\n{log_tail(p, 25)}" for p in paths)


def _start_nodes(
    tmp_path: Path,
    superlink_port: int,
    logs: list[Path],
    procs: list[subprocess.Popen[Any]],
    *,
    ca_certfile: Path | None = None,
    keys: tuple[Path | None, Path | None] = (None, None),
    warm: bool = False,
) -> list[subprocess.Popen[Any]]:
    """Start partitions 0 and 1, each with its own runtime port and Flower home, as devices
    (``warm``: through ``ecofed supernode --warm`` with 0.1 s polls)."""
    nodes = []
    used = [superlink_port]
    for partition, key in enumerate(keys):
        node_port = find_free_port(exclude=used)
        used.append(node_port)
        log = tmp_path / f"supernode-{partition}.log"
        logs.append(log)
        node = start_supernode(
            f"127.0.0.1:{superlink_port}",
            node_port,
            f"partition-id={partition} num-partitions=2",
            flower_env(tmp_path / f"node-{partition}-home"),
            log,
            root_certificates=ca_certfile,
            auth_private_key=key,
            poll_seconds=0.1 if warm else None,
            warm=warm,
        )
        procs.append(node)
        nodes.append(node)
    return nodes


def _run_app(
    env: dict[str, str],
    out_dir: Path,
    nodes: list[subprocess.Popen[Any]],
    logs: list[Path],
    procs: list[subprocess.Popen[Any]],
    app_dir: Path = REPO,
) -> dict[str, Any]:
    """``flwr run`` the repository's app (or ``app_dir``) on the default SuperLink of
    ``env``; its results."""
    run_log = out_dir.parent / f"flwr-run-{out_dir.name}.log"
    command = [
        flower_executable("flwr", env),
        "run",
        str(app_dir),
        "--stream",
        "--run-config",
        RUN_CONFIG,
        "--run-config",
        f"output-dir='{out_dir}'",
    ]
    run = _spawn(command, env, run_log)
    procs.append(run)
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while run.poll() is None:
        # A node that dies would leave the ServerApp waiting: fail at once instead.
        dead = [f"partition {i}" for i, p in enumerate(nodes) if p.poll() is not None]
        assert not dead, f"SuperNode exited: {dead}" + _tails(logs)
        assert time.monotonic() < deadline, "flwr run timed out" + _tails(logs)
        time.sleep(1.0)
    # flwr run exits 0 even when the run fails: the results file is the verdict.
    assert run.returncode == 0, _tails(logs)
    results_file = out_dir / "results.json"
    assert results_file.exists(), "no results.json" + _tails(logs)
    results: dict[str, Any] = json.loads(results_file.read_text())
    assert results["status"] == "completed", _tails(logs)
    return results


#: Per-round reports of each deployment run of this module, to check that two deployments of
#: the same config and seed (new node ids each time) run the same rounds.
_DEPLOYED_ROUNDS: list[list[tuple[Any, ...]]] = []


def _check_same_as_other_deployments(results: dict[str, Any]) -> None:
    rounds = [
        (r["round"], r["sampled"], r["uploaded"], r["slots"], r["val_accuracy"], r["accuracy"])
        for r in results["rounds"]
    ]
    for other in _DEPLOYED_ROUNDS:
        assert rounds == other
    _DEPLOYED_ROUNDS.append(rounds)


def _check_upload_then_replay(results: dict[str, Any], out_dir: Path) -> None:
    # A round 0 entry, where the app writes one, is the evaluation before any training.
    first, second = [r for r in results["rounds"] if r["round"] > 0]
    assert (first["round"], second["round"]) == (1, 2)
    assert first["refresh"] and sorted(first["uploaded"]) == sorted(first["sampled"])
    assert len(first["uploaded"]) == 2
    assert first["bytes_up_activations"] > 0
    assert not second["refresh"]
    assert second["bytes_up"] == 0 and second["train_samples"] > 0  # replay from the buffer
    assert isinstance(results["final_accuracy"], float)
    assert (out_dir / "accuracy.png").exists()
    # Devices are keyed by partition id (from the handshake), not by their random node ids.
    assert sorted(first["sampled"]) == ["0", "1"]
    _check_same_as_other_deployments(results)


def test_two_supernodes_upload_then_replay(tmp_path: Path) -> None:
    started = time.monotonic()
    out_dir = tmp_path / "out"
    home = tmp_path / "flwr-home"  # SuperLink, ServerApp and the flwr CLI
    env = flower_env(home)
    procs: list[subprocess.Popen[Any]] = []
    logs = [tmp_path / "superlink" / "superlink-console.log", tmp_path / "flwr-run-out.log"]
    try:
        port = find_free_port()
        procs.append(start_superlink(port, tmp_path / "superlink", env, simulation=False))
        write_flwr_config(home, f"127.0.0.1:{port}")
        nodes = _start_nodes(tmp_path, port, logs, procs)
        results = _run_app(env, out_dir, nodes, logs, procs)
    finally:
        for proc in reversed(procs):
            stop_process(proc)

    _check_upload_then_replay(results, out_dir)
    print(f"deployment test: {time.monotonic() - started:.0f} s")


# ------------------------------------------------------------------- TLS and authentication


def _write_tls_files(folder: Path) -> TlsFiles:
    """A CA and a SuperLink certificate it signed, for ``localhost`` and ``127.0.0.1``."""
    folder.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.UTC)
    validity = (now - datetime.timedelta(hours=1), now + datetime.timedelta(days=1))

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ecofed test CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(validity[0])
        .not_valid_after(validity[1])
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    server_key = ec.generate_private_key(ec.SECP256R1())
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(validity[0])
        .not_valid_after(validity[1])
        # 127.0.0.1 too: the SuperLink's own flower-superexec connects there.
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        # The extensions of docs/deployment.md's recipe, which strict verification wants.
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=True,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(server_key.public_key()), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )

    tls = TlsFiles(folder / "ca.crt", folder / "server.pem", folder / "server.key")
    tls.ca_certfile.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    tls.certfile.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
    tls.keyfile.touch(mode=0o600)
    tls.keyfile.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return tls


def _write_node_key(path: Path) -> Path:
    """An OpenSSH ECDSA P-384 key pair at ``path`` and ``path.pub`` (as ``ssh-keygen``)."""
    key = ec.generate_private_key(ec.SECP384R1())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
    )
    public = path.with_name(path.name + ".pub")
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        )
        + b"\n"
    )
    return public


def _flwr_json(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    """Run ``flwr <args> --format json`` against the default SuperLink of ``env``."""
    command = [flower_executable("flwr", env), *args, "--format", "json"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    reply: dict[str, Any] = json.loads(done.stdout)
    assert reply["success"], done.stdout
    return reply


def test_tls_and_supernode_auth_admit_registered_nodes_only(tmp_path: Path) -> None:
    from flwr.supercore.exit import ExitCode

    started = time.monotonic()
    out_dir = tmp_path / "out"
    home = tmp_path / "flwr-home"
    env = flower_env(home)
    tls = _write_tls_files(tmp_path / "certs")
    keys = [tmp_path / "keys" / f"device-{i}.key" for i in range(3)]
    public_keys = [_write_node_key(key) for key in keys]
    procs: list[subprocess.Popen[Any]] = []
    logs = [tmp_path / "superlink" / "superlink-console.log", tmp_path / "flwr-run-out.log"]
    try:
        port = find_free_port()
        superlink = start_superlink(
            port, tmp_path / "superlink", env, simulation=False, tls=tls, supernode_auth=True
        )
        procs.append(superlink)
        write_flwr_config(home, f"127.0.0.1:{port}", root_certificates=tls.ca_certfile)
        # The path of the .pub file, not its text.
        registered = [
            str(_flwr_json(["supernode", "register", str(public_key)], env)["node-id"])
            for public_key in public_keys[:2]
        ]

        # The third key was never registered: the SuperLink must turn its node away.
        intruder_log = tmp_path / "supernode-unregistered.log"
        logs.append(intruder_log)
        intruder = start_supernode(
            f"127.0.0.1:{port}",
            find_free_port(exclude=[port]),
            "partition-id=1 num-partitions=2",
            flower_env(tmp_path / "node-unregistered-home"),
            intruder_log,
            root_certificates=tls.ca_certfile,
            auth_private_key=keys[2],
            wait=False,
        )
        procs.append(intruder)
        try:
            intruder.wait(timeout=REFUSAL_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            pytest.fail(
                f"an unregistered SuperNode still runs after {REFUSAL_TIMEOUT_S} s" + _tails(logs)
            )
        # Flower's exit codes are logged; the process itself exits with status 1.
        refusal = f"Exit Code: {int(ExitCode.SUPERNODE_CONNECTION_ERROR)}"
        assert intruder.returncode != 0, _tails(logs)
        assert refusal in log_tail(intruder_log), _tails(logs)
        assert "Failed to activate SuperNode" in log_tail(intruder_log), _tails(logs)

        # These devices run through `ecofed supernode --warm`: their rounds must be the same
        # as the plain flower-supernodes' of the other test (_check_same_as_other_deployments).
        nodes = _start_nodes(
            tmp_path,
            port,
            logs,
            procs,
            ca_certfile=tls.ca_certfile,
            keys=(keys[0], keys[1]),
            warm=True,
        )
        results = _run_app(env, out_dir, nodes, logs, procs)
        # The two registered nodes are the ones online; the refused one left no node behind.
        listed = _flwr_json(["supernode", "ls"], env)["nodes"]
        assert {n["node-id"]: n["status"] for n in listed} == dict.fromkeys(registered, "online")
        _check_upload_then_replay(results, out_dir)

        # A second run of another app (FAB) on the same warm nodes: each executor restarts
        # itself to load it (same process, fresh modules) and the run repeats the rounds.
        other_app = tmp_path / "other-app"
        other_app.mkdir()
        (other_app / "pyproject.toml").write_text((REPO / "pyproject.toml").read_text())
        (other_app / "NOTE.md").write_text("Same components, another FAB hash.\n")
        second = _run_app(env, tmp_path / "out2", nodes, logs, procs, app_dir=other_app)
        _check_upload_then_replay(second, tmp_path / "out2")
        for node_log in logs[-2:]:
            assert "restarting to load it" in node_log.read_text(errors="replace"), _tails(logs)
    finally:
        for proc in reversed(procs):
            stop_process(proc)

    print(f"TLS deployment test: {time.monotonic() - started:.0f} s")
