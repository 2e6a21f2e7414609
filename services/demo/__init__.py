"""`tumorsearch demo`: the whole system on this machine, fed with real figshare studies through a real C-STORE."""
