# fake-subrelayd.tcl: a stand-in for subrelayd used only by the harness
# self-tests (tests/harness/daemon.test), run as `tclsh fake-subrelayd.tcl`.
# It knows just enough of the real command line and output:
#   -c FILE      reads [relay] listen (port 0 allowed); binds each address,
#                logs "listening address=IP:PORT" per listener on stderr and
#                greets every client with "220 fake ESMTP"; exits 0 on SIGTERM
#   -o relay.listen=LIST   overrides listen
#   -t           "FILE:LINE: message" on stderr and exit 1 if a line says
#                "bad", otherwise "configuration ok" on stdout and exit 0
#   -V           version on stdout     --crash   abort (SIGABRT) after listening
#   --exit N     exit N right away, before listening

package require Expect
chan configure stdout -translation lf

set conf ""
set listen ""
set check 0
set crash 0
for {set i 0} {$i < $argc} {incr i} {
    set a [lindex $argv $i]
    switch -- $a {
        -c { set conf [lindex $argv [incr i]] }
        -o {
            set o [lindex $argv [incr i]]
            if {[regexp {^relay\.listen=(.*)$} $o -> v]} { set listen $v }
        }
        -t { set check 1 }
        -V { puts "subrelayd (fake) 0.0"; exit 0 }
        --crash { set crash 1 }
        --exit { puts stderr "exiting early"; exit [lindex $argv [incr i]] }
        default { puts stderr "unknown argument $a"; exit 2 }
    }
}

set f [open $conf r]
set lines [split [read $f] "\n"]
close $f
set n 0
set from_file ""
set cont 0
foreach line $lines {
    incr n
    if {$check && [string match *bad* $line]} {
        puts stderr "$conf:$n: bad line"
        exit 1
    }
    if {$cont && [regexp {^\s+(\S.*)$} $line -> v]} {
        append from_file "," [lindex [split $v ";"] 0]
        continue
    }
    set cont 0
    if {[regexp {^\s*listen\s*=\s*(.*)$} $line -> v]} {
        set from_file [lindex [split $v ";"] 0]
        set cont 1
    }
}
if {$listen eq ""} { set listen $from_file }
if {$check} { puts "configuration ok"; exit 0 }

proc greet {ch addr port} {
    chan configure $ch -translation binary
    puts -nonewline $ch "220 fake ESMTP\r\n"
    flush $ch
    fileevent $ch readable [list apart $ch]
}
proc apart {ch} {
    if {[catch {gets $ch line}] || [eof $ch]} { close $ch; return }
    if {[string match -nocase QUIT* $line]} {
        puts -nonewline $ch "221 bye\r\n"
        close $ch
    } elseif {$line ne ""} {
        puts -nonewline $ch "250 ok\r\n"
        flush $ch
    }
}

foreach item [split $listen ,] {
    set item [string trim $item]
    if {$item eq ""} { continue }
    if {![regexp {^\[?(.*?)\]?:([0-9]+)$} $item -> host port]} {
        puts stderr "bad listen address $item"
        exit 1
    }
    set s [socket -server greet -myaddr $host $port]
    set p [lindex [chan configure $s -sockname] 2]
    if {[string match *:* $host]} { set host "\[$host\]" }
    puts stderr "info: listening address=$host:$p"
}
puts stderr "info: ready"
if {$crash} { exec /bin/sh -c {kill -s ABRT "$1"} sh [pid] }
trap {puts stderr "info: stopping"; exit 0} SIGTERM
vwait forever
