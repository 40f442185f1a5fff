"""The error a config that cannot run raises. Its own module, importing nothing, so that the
registry (:mod:`harness.algos`) and the checks (:mod:`harness.config`) can both name it without
importing each other."""


class ConfigError(ValueError):
    """A config value that cannot run; the message names the key and the accepted values."""
