"""The admin app on the admin listener: pages (``pages.py``), the JSON API (``api.py``),
both over the same operations (``actions.py``) and the same answer models (``models.py``,
``views.py``); who may use it (``security.py``); what the dashboard shows
(``dashboard.py``). Rules live in the service layer, never here.

Adding a page: a route in ``pages.py`` (or a router of its own, included in
``gateway/web/app.py``), a template under ``templates/`` extending ``admin_base.html``,
and an entry in ``pages.NAV``. The admin guard protects it without further ado.
"""
