"""The admin app on the admin listener, by resource (allowlist, users, tokens, peers,
sessions, bans, audit, status):

- ``pages/`` - server-rendered pages, one module per resource; each form action is a
  function of its own (``pages/common.py`` routes and answers refusals), drawn with
  ``rendering.py`` (templates, the frame, confirmation and message pages); a form is read
  through the JSON API's input model (``pages/forms.py``);
- ``api/`` - the JSON API under ``/api/``, one module per resource; ``api/errors.py``
  answers every refusal;
- ``actions/`` - every operation once, for both: runs the service functions on the
  database worker, tells the proxy what changed, and answers the records as shown
  (``models.py``: what the API accepts and answers - a record's ``*Out`` model extends
  the service's dataclass -, ``views.py``: a record and what only the admin app knows);
- ``security.py`` - who may use the app (the guard), ``caller.py`` - who is asking;
- ``dashboard.py`` - what the dashboard shows.

Rules live in the service layer (``gateway/services``), never here: a service refuses with
a typed error (``gateway/services/errors.py``) and each edge maps it once, with the status
of its kind (``refusals.py``). Imports go one way: pages and api -> actions -> services;
pages never import the api, and security imports neither.

Adding a page: a module under ``pages/`` with its router, included in
``pages/__init__.py``, a template under ``templates/`` extending ``admin_base.html``, and an
entry in ``rendering.NAV``. The admin guard protects it without further ado.
"""
