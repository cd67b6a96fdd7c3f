"""Friends, blocks and groups: who may talk to whom, and the groups they talk in."""
