"""The pure model of pirn_like: knots, results, records and hashing; no I/O."""
