"""medcoder: medical coding models with evidence grounding."""
