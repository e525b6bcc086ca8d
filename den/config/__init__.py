"""The one home of settings: schemas (the only defaults), their registration in Hydra's
ConfigStore, and the validation every run passes once, before anything is written."""
