"""The gateway's own web app: login portal, admin app and health, behind the proxy."""
