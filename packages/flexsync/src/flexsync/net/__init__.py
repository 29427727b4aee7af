"""Network modelling: units, the α-β cost model, network conditions and the virtual clock."""
