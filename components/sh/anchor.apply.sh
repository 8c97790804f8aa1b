# The host's anchor: the first command of a host entry, created before any concern's and deleted
# after all of them. It changes nothing here; its delete (anchor.revert.sh) reverts what is left.
say "host entry $HOST of stack $STACK: pulumi destroy reverts here whatever of it is still applied"
