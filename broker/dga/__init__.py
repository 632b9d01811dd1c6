"""What the Data Governance Act asks of Tiers: its registration, public records, reports and incidents."""
