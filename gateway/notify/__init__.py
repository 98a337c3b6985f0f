"""Notifications to the owner: what happened to the gateway or the CEMM, on the phone.

- :mod:`gateway.notify.events`: the registry of notifiable events (one line each).
- :mod:`gateway.notify.message`: a notice becomes a short message in the reader's language.
- :mod:`gateway.notify.delivery`: a bounded table, folding, a worker thread, Apprise.
- :mod:`gateway.notify.sources`: notices from the audit log (and the login checks).
- :mod:`gateway.notify.runtime`: ``[notify]`` read, the parts started.
"""
