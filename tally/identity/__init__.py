"""Members and real-name identities: X.509 certificate chains (:mod:`.certs`) and the
unified social credit code of a Chinese organisation (:mod:`.credit_code`), as pure
functions that deterministic consensus code may call."""
