"""Process limits the gateway raises for itself at start-up.

Every proxied connection holds two file descriptors (client and CEMM side), and a phone's
dashboard keeps a WebSocket open: the common soft limit of 1,024 open files would stop the
gateway accepting at about 500 connections while the hard limit (often 524,288) allows far
more. The soft limit is raised to the hard limit, never beyond it, as nginx's
``worker_rlimit_nofile`` or systemd's defaults do for network daemons.
"""

from __future__ import annotations

import logging
import resource

logger = logging.getLogger("cemm_gateway")


def raise_open_file_limit() -> int:
    """Raise the soft ``RLIMIT_NOFILE`` to the hard limit; return the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft == resource.RLIM_INFINITY or soft >= hard:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError) as error:
        logger.warning("could not raise the open-file limit from %d to %d: %s", soft, hard, error)
        return soft
    return hard
