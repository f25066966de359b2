"""The records archive: what the school keeps of its online teaching, and who may read it.

access.py (who may read a session's records), attendance.py (attendance worked out from the stored
intervals and events), search.py (finding sessions), shares.py (recordings shared with a class through
expiring links), export.py (a session as one streamed ZIP), retention.py (retention periods, legal
holds and the daily deletion job). The HTTP routes are in liveclass/api/*_routes.py.
"""
