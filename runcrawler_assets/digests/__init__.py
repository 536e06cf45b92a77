"""Digests (issue 19): each user's runs of a period, and the managers' summary, as e-mail."""

from runcrawler_assets.digests.compose import Digest, Period
from runcrawler_assets.digests.recipients import Recipients, RecipientsError, load_recipients
from runcrawler_assets.digests.run import DigestError, DigestRound, digest_round, next_period

__all__ = [
    "Digest",
    "DigestError",
    "DigestRound",
    "Period",
    "Recipients",
    "RecipientsError",
    "digest_round",
    "load_recipients",
    "next_period",
]
