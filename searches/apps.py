import gc

from django.apps import AppConfig


class SearchesConfig(AppConfig):
    name = "searches"
    verbose_name = "Searches"

    def ready(self) -> None:
        # What Django has built by now (modules, models, admin, URL patterns) lives as long as the
        # process. Frozen, the cyclic collector stops walking it on every full collection and at
        # exit (0.2 s of a 2 s search from the command line), and the processes a worker forks
        # (rq's work horse, the counting processes) share its pages instead of copying them when a
        # collection touches them: what the gc module's documentation advises before a fork.
        gc.freeze()
