"""The login portal under /.gateway/: log in, log out, the account page."""
