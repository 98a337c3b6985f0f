"""mitmproxy's master and its own addons that the engine runs, without the other addons.

``from mitmproxy.addons import core`` runs the package's ``__init__`` first, which imports
all of mitmproxy's ~30 default addons - Flask for its onboarding app, ldap3 for proxy
authentication, and more the gateway never runs: about 14 MB of resident memory on an idle
gateway (``bench/results.md``, idle RSS). Here the package is set up without running its
``__init__``, so importing a submodule loads just that submodule. Asking the package for
anything else (``mitmproxy.addons.default_addons``, as mitmproxy's own tools and test
helpers do) runs the real ``__init__`` then, once.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from typing import Any


def _install_package() -> None:
    if "mitmproxy.addons" in sys.modules:
        return
    spec = importlib.util.find_spec("mitmproxy.addons")
    assert spec is not None and spec.loader is not None
    loader = spec.loader
    package = importlib.util.module_from_spec(spec)  # with its __path__; __init__ not run
    loaded = False

    def __getattr__(name: str) -> Any:
        nonlocal loaded
        if importlib.util.find_spec(f"mitmproxy.addons.{name}") is not None:
            # A submodule (the import system asks before importing it): just that one.
            return importlib.import_module(f"mitmproxy.addons.{name}")
        if not loaded:
            loaded = True
            loader.exec_module(package)
            if name in package.__dict__:
                return package.__dict__[name]
        raise AttributeError(f"module 'mitmproxy.addons' has no attribute {name!r}")

    package.__getattr__ = __getattr__  # type: ignore[method-assign]
    sys.modules["mitmproxy.addons"] = package
    setattr(sys.modules["mitmproxy"], "addons", package)  # noqa: B010 - as the import system would


_install_package()

# After the set-up (mitmproxy.master imports the package too, for its log addon).
from mitmproxy.addons import core, next_layer, proxyserver  # noqa: E402
from mitmproxy.master import Master  # noqa: E402

__all__ = ["Master", "core", "next_layer", "proxyserver"]
