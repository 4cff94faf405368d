"""Re-identification on request, with four eyes (AVG art. 4(5)).

Where a covenant rule says ``reidentify: on-request``, a user acting for a recipient may ask
the hub to reveal the value behind one reversible pseudonym that recipient received. A second,
different, authorised user approves or rejects; only an approved request reveals the value,
once, to the requester. Every step is an event row (:mod:`services.reid.store`) and an audit
record in the hash-chained audit log (:mod:`services.reid.workflow`).
"""
