"""The lip-sync expert (SyncNet-style, reference §6.4): training, loading a run and scoring a clip's sync."""
