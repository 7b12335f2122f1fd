"""Provider adapters: each takes a rendered message and delivers it, or raises
:class:`~senders.outcomes.TransientError` / :class:`~senders.outcomes.PermanentError`."""
