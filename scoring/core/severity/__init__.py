"""Patient severity from the zones' scores and the clinical record (DSA-MIL + MA-CLR, Xue et al. 2021)."""
