# hooks: the installed files, the boot unit's enablement and each interface's routing; and
# whether the last apply was rolled back.
chk_hooks
chk_networkd
chk_rolled_back hooks "routing"
