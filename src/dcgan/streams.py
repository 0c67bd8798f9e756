"""Seeds of the run's random streams (data order, latents, mirroring), each derived from the run's
seed and where in the run it is, so that a resumed run draws what an uninterrupted one would."""


def derived_seed(*parts: int) -> int:
    """A seed for one stream of randomness, from the run's seed and where in the run it is
    (epoch; rank and iteration): the same in a run and in its resumption."""
    return hash(parts) % 2**63  # tuples of ints hash the same in every process
