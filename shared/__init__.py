"""Code every TumorSearch program imports: settings models, contracts, the vector store facade.

Nothing here reads the environment or has an entry point; programs build their settings once at start
and pass what each piece needs as arguments. Importing `shared` never imports torch.
"""
