"""The reporter side: parsing a report, arrival (who may read it), committing a submission,
the receipt door and follow-up. Framework-free; independent of the workspace."""
