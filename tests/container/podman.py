"""Building and running the project's image with podman, the way compose.yaml runs it.

There is no Docker engine on the test machines; podman builds the Dockerfile unchanged
(``../shared/containers.md``):

- ``tests/container/containers.conf`` (``CONTAINERS_CONF``) selects the runc runtime and
  turns off default ulimits, which the sandbox cannot raise; ``podman run`` gets explicit
  ``--ulimit`` flags for the same reason.
- The base image ``debian:trixie-slim`` cannot be pulled, so ``scripts/container-base``
  makes it with debootstrap - once per machine: podman keeps it between runs.
- pip inside the build trusts the host's CA bundle through the Dockerfile's optional
  ``extra_ca`` build secret (the package index is reached through a TLS-intercepting proxy).

:func:`compose_run_flags` turns the gateway service of ``compose.yaml`` into ``podman run``
flags, so the test runs the container exactly as locked down as the compose file says.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from tests.support.ci import cannot_run

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "localhost/cemm-gateway:test"
BASE_IMAGE = "docker.io/library/debian:trixie-slim"
CONTAINERS_CONF = Path(__file__).resolve().parent / "containers.conf"
# Everything a test makes carries this label (containers, volumes), so leftovers of an
# interrupted run are found and removed.
LABEL = "cemm-gateway-test"
PREFIX = "cemm-gw-test-"
ULIMITS = ("--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024")
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
PASSWORD_FILE_VARIABLE = "CEMM_GATEWAY_AUTH__INITIAL_ADMIN_PASSWORD_FILE"


def environment() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("CONTAINERS_CONF", str(CONTAINERS_CONF))
    return env


def podman(
    *args: str, input: str | None = None, timeout: float = 120, check: bool = False
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["podman", *args],
        capture_output=True,
        text=True,
        input=input,
        timeout=timeout,
        env=environment(),
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"podman {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
        )
    return result


def unavailable() -> str | None:
    """Why podman cannot build and run the image here, or None."""
    if os.geteuid() != 0:
        return "needs root (podman with host networking, capabilities and /dev/net/tun)"
    missing = [tool for tool in ("podman", "runc") if shutil.which(tool) is None]
    if missing:
        return f"{', '.join(missing)} not installed (apt-get install podman runc debootstrap)"
    probe = podman("info", "--format", "{{.Host.OCIRuntime.Name}}", timeout=60)
    if probe.returncode != 0:
        return f"podman does not work here: {probe.stderr.strip()[-500:]}"
    if podman("image", "exists", BASE_IMAGE).returncode != 0 and not shutil.which("debootstrap"):
        return f"no {BASE_IMAGE} and no debootstrap to make it (apt-get install debootstrap)"
    if not Path("/dev/net/tun").exists():
        return "no /dev/net/tun on this machine"
    return None


def require_podman() -> None:
    """Skip the calling test if podman cannot run here; fail instead when ``CI`` is true."""
    reason = unavailable()
    if reason is None:
        return
    cannot_run(reason)


def sweep_leftovers() -> None:
    """Remove what an interrupted earlier run left behind."""
    names = podman("ps", "-a", "-q", "--filter", f"label={LABEL}").stdout.split()
    if names:
        podman("rm", "-f", "-t", "0", *names)
    volumes = podman("volume", "ls", "-q", "--filter", f"label={LABEL}").stdout.split()
    if volumes:
        podman("volume", "rm", "-f", *volumes)


@dataclass
class Build:
    image: str
    base_seconds: float
    build_seconds: float
    size: int


def build_image(log: Path) -> Build:
    """Make the base image if missing, build the Dockerfile, drop the image it replaced."""
    started = time.monotonic()
    base = subprocess.run(
        [str(ROOT / "scripts" / "container-base")],
        capture_output=True,
        text=True,
        timeout=900,
        env=environment(),
    )
    if base.returncode != 0:
        raise AssertionError(f"scripts/container-base failed:\n{base.stdout}\n{base.stderr}")
    base_seconds = time.monotonic() - started

    previous = podman("image", "inspect", "--format", "{{.Id}}", IMAGE).stdout.strip()
    command = ["build", "--format", "docker", "--pull=never", "--layers", "-t", IMAGE]
    # The OCI labels' build arguments, as a user's build gets them.
    labels = subprocess.run(
        [str(ROOT / "scripts" / "container-build-args")],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    command += labels.stdout.split()
    extra_ca = os.environ.get("CEMM_BUILD_EXTRA_CA") or (
        str(HOST_CA_BUNDLE) if HOST_CA_BUNDLE.exists() else ""
    )
    if extra_ca:
        command += ["--secret", f"id=extra_ca,src={extra_ca}"]
    started = time.monotonic()
    with log.open("w") as output:
        built = subprocess.run(
            ["podman", *command, str(ROOT)],
            stdout=output,
            stderr=subprocess.STDOUT,
            timeout=1200,
            env=environment(),
        )
    build_seconds = time.monotonic() - started
    if built.returncode != 0:
        tail = "\n".join(log.read_text().splitlines()[-40:])
        raise AssertionError(f"podman build failed ({built.returncode}):\n{tail}")
    current = podman("image", "inspect", "--format", "{{.Id}}", IMAGE, check=True).stdout.strip()
    if previous and previous != current:
        podman("image", "rm", previous)  # fails harmlessly while something still uses it
    size = int(podman("image", "inspect", "--format", "{{.Size}}", IMAGE, check=True).stdout)
    return Build(IMAGE, base_seconds, build_seconds, size)


def compose_service() -> dict[str, Any]:
    document = YAML(typ="safe").load((ROOT / "compose.yaml").read_text())
    service: dict[str, Any] = document["services"]["gateway"]
    return service


def compose_run_flags() -> list[str]:
    """The lock-down of compose.yaml's gateway service as ``podman run`` flags."""
    service = compose_service()
    flags: list[str] = []
    for capability in service.get("cap_drop", []):
        flags += ["--cap-drop", capability]
    for capability in service.get("cap_add", []):
        flags += ["--cap-add", capability]
    for device in service.get("devices", []):
        flags += ["--device", device]
    for option in service.get("security_opt", []):
        flags += ["--security-opt", option]
    if service.get("read_only"):
        # podman adds tmpfs mounts of its own to a read-only container; Docker does not.
        flags += ["--read-only", "--read-only-tmpfs=false"]
    for mount in service.get("tmpfs", []):
        flags += ["--tmpfs", mount]
    return flags


INTERPOLATION = re.compile(r"\$\{(\w+):-([^}]*)\}")


def interpolate(value: str, environ: Mapping[str, str] | None = None) -> str:
    """``${NAME:-default}`` as Compose reads it (the only form compose.yaml uses)."""
    source = os.environ if environ is None else environ
    return INTERPOLATION.sub(lambda m: source.get(m.group(1)) or m.group(2), value)


def compose_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The gateway service's ``environment``, interpolated as Compose does."""
    service = compose_service()
    return {
        str(k): interpolate(str(v), environ) for k, v in (service.get("environment") or {}).items()
    }


def stop_grace_seconds() -> int:
    value = str(compose_service().get("stop_grace_period", "10s"))
    return int(value.rstrip("s"))


@dataclass
class Deployment:
    """One gateway installation: a data volume, and a container at a time on it."""

    image: str
    env: dict[str, str]
    network: str = "host"
    admin_password: str | None = None
    name: str = field(default_factory=lambda: PREFIX + uuid.uuid4().hex[:8])
    container: str | None = None
    _serial: int = 0

    def __post_init__(self) -> None:
        podman("volume", "create", "--label", LABEL, self.volume, check=True)
        self._secrets = Path(tempfile.mkdtemp(prefix=PREFIX))
        self._secret_file = self._secrets / "admin_password"
        if self.admin_password is not None:
            self._secret_file.write_text(self.admin_password)
            self._secret_file.chmod(0o600)

    @property
    def volume(self) -> str:
        return f"{self.name}-data"

    def start(self) -> str:
        """A new container on the same volume, as compose.yaml runs it."""
        assert compose_environment().get(PASSWORD_FILE_VARIABLE, "").startswith("/run/secrets/")
        self._serial += 1
        self.container = f"{self.name}-{self._serial}"
        env = dict(self.env)
        secret_flags: list[str] = []
        if self.admin_password is not None:
            # compose.yaml's secret the way Compose mounts one outside a swarm: the file,
            # read-only, at /run/secrets/<name> (podman's own secrets cannot be mounted
            # into a read-only container by podman 4.3).
            env = {**compose_environment(), **env}
            secret_flags = ["-v", f"{self._secret_file}:{env[PASSWORD_FILE_VARIABLE]}:ro"]
        env_flags = [flag for key, value in env.items() for flag in ("-e", f"{key}={value}")]
        podman(
            "run",
            "-d",
            "--name",
            self.container,
            "--label",
            LABEL,
            "--network",
            self.network,
            *ULIMITS,
            *compose_run_flags(),
            *secret_flags,
            "-v",
            f"{self.volume}:/data",
            *env_flags,
            self.image,
            check=True,
        )
        return self.container

    def ensure_running(self) -> str:
        if self.container is None or self.state() != "running":
            if self.container is not None:
                self.remove()
            self.start()
            self.wait_healthy()
        assert self.container is not None
        return self.container

    def state(self) -> str:
        assert self.container is not None
        return podman("inspect", "--format", "{{.State.Status}}", self.container).stdout.strip()

    def inspect(self, template: str) -> str:
        assert self.container is not None
        return podman("inspect", "--format", template, self.container, check=True).stdout.strip()

    def logs(self) -> str:
        assert self.container is not None
        result = podman("logs", self.container)
        return result.stdout + result.stderr

    def wait_healthy(self, timeout: float = 60) -> float:
        """Run the image's HEALTHCHECK until it passes; returns the seconds it took.

        podman runs healthchecks on a timer only under systemd; here the test runs them,
        which records the result in the container's state just the same.
        """
        assert self.container is not None
        started = time.monotonic()
        last = ""
        while time.monotonic() - started < timeout:
            if self.state() not in ("running", "created"):
                raise AssertionError(
                    f"{self.container} is {self.state()} (exit code "
                    f"{self.inspect('{{.State.ExitCode}}')}):\n{self.logs()[-4000:]}"
                )
            check = podman("healthcheck", "run", self.container, timeout=30)
            if check.returncode == 0:
                return time.monotonic() - started
            last = check.stdout + check.stderr
            time.sleep(0.5)
        raise AssertionError(
            f"{self.container} did not become healthy in {timeout} s: {last}\n{self.logs()[-4000:]}"
        )

    def exec(
        self, *command: str, input: str | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        assert self.container is not None
        interactive = ["-i"] if input is not None else []
        return podman("exec", *interactive, self.container, *command, input=input, timeout=timeout)

    def cli(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        """``cemm-gateway ARGS`` inside the running container, as an operator runs it."""
        result = self.exec("cemm-gateway", *args, input=input)
        assert result.returncode == 0, f"cemm-gateway {' '.join(args)}: {result.stderr}"
        return result

    def stop(self, timeout: int = 10) -> tuple[int, float]:
        """``podman stop`` (SIGTERM, then SIGKILL after ``timeout``): (exit code, seconds)."""
        assert self.container is not None
        started = time.monotonic()
        podman("stop", "-t", str(timeout), self.container, timeout=timeout + 30, check=True)
        elapsed = time.monotonic() - started
        return int(self.inspect("{{.State.ExitCode}}")), elapsed

    def remove(self) -> None:
        if self.container is not None:
            podman("rm", "-f", "-t", "0", self.container)
            self.container = None

    def close(self) -> None:
        self.remove()
        podman("volume", "rm", "-f", self.volume)
        shutil.rmtree(self._secrets, ignore_errors=True)


def run_once(
    image: str, *command: str, entrypoint: str = "sh", env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """A throw-away container of the image, without network, running COMMAND."""
    env_flags = [flag for key, value in (env or {}).items() for flag in ("-e", f"{key}={value}")]
    return podman(
        "run",
        "--rm",
        "--network",
        "none",
        "--label",
        LABEL,
        *ULIMITS,
        *env_flags,
        "--entrypoint",
        entrypoint,
        image,
        *command,
    )
